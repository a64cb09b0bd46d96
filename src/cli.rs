//! Command-line surface: argument types, dispatch, and the one place where failures become text
//! and an exit code. A command is listed here only once it works.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Reporter, TerminalReporter};

#[derive(Debug, Parser)]
#[command(
    name = "harness",
    version,
    about = "Production-parity packaging, test runs and gated deploys for Passenger webhosting apps",
    long_about = "harness builds the exact zip production gets, tests it in a production-like stack, and \
                  deploys only bytes that passed.\n\nRun it in the app's repository, next to harness.toml \
                  (see docs/config.md).",
    after_help = "Exit codes: 0 success, 1 tests failed or parity differs, 2 bad input or configuration, \
                  3 environment failure (Docker, SSH, pip, disk), 4 refused (gate or lock), 5 deploy rolled \
                  back, 6 remote state unknown, 130 interrupted."
)]
pub struct Cli {
    /// The app's repository (where harness.toml lives).
    #[arg(long, global = true, value_name = "DIR", default_value = ".")]
    pub project: PathBuf,
    /// Use this config file instead of DIR/harness.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output on stdout; progress still goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the deployable package: deploy.zip and deploy.zip.sha256.
    ///
    /// Stages the sources into a fresh directory, vendors the wheels (from a cache keyed by the
    /// requirements, Pythons and platforms; a warm cache runs no pip), seeds the database, writes
    /// build_info.json, DEPLOY_README.md and MANIFEST.json, and zips it all deterministically.
    /// Generated secrets go to deployment_state_<target>.json (mode 0600, never packaged).
    Build(BuildArgs),
    /// Start the production-like stack and leave it running.
    ///
    /// Builds the local package (unless --skip-build and one exists), extracts it into the run's
    /// own directory .harness/runs/<id>/, starts app and proxy (and the mocks) on a fresh network
    /// with ephemeral ports on 127.0.0.1, waits until every service answers, then prints the URLs,
    /// the credentials file and how to stop it.
    Up(UpArgs),
    /// Remove a run's containers, network and volumes (logs stay in .harness/runs/<id>/logs/).
    Down(DownArgs),
    /// Show the runs of this project that are up, their services, state and ports.
    Status(StatusArgs),
    /// Print a service's logs.
    Logs(LogsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Also start the mail catcher, GeoIP and Netcup mocks, and point the app at them.
    #[arg(long)]
    pub with_mocks: bool,
    /// Serve plain HTTP on the proxy.
    #[arg(long)]
    pub no_tls: bool,
    /// Reuse .harness/dist/local/deploy.zip instead of building (builds anyway if it is missing).
    #[arg(long)]
    pub skip_build: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The run to remove (see `harness status`); needed when several are up.
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    pub run: Option<String>,
    /// Remove every run of this project.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show only this run.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service: app, proxy, mailpit, geoip, netcup, ...
    pub service: String,
    /// The run (see `harness status`); needed when several are up.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Keep printing new lines until the service stops or Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Local,
    Webhosting,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Local => "local",
            Target::Webhosting => "webhosting",
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Which target's package to build [default: webhosting].
    #[arg(long, value_enum, conflicts_with = "local")]
    pub target: Option<Target>,
    /// Short for --target local.
    #[arg(long)]
    pub local: bool,
    /// Also apply the demo seed (`demo_sql`, or HARNESS_SEED_DEMO=1 for a seed command).
    #[arg(long)]
    pub seed_demo: bool,
    /// Generate new secrets instead of reusing those in deployment_state_<target>.json.
    #[arg(long)]
    pub rotate_secrets: bool,
    /// Write the zip here instead of .harness/dist/<target>/deploy.zip.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl BuildArgs {
    fn target(&self) -> Target {
        if self.local {
            Target::Local
        } else {
            self.target.unwrap_or(Target::Webhosting)
        }
    }
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit.code())
        }
    }
}

fn dispatch(cli: &Cli) -> Result<Exit, Failure> {
    let reporter = TerminalReporter;
    // Every command first removes what crashed runs left behind (DESIGN.md, "Stack").
    crate::stack::sweep::at_start(&reporter);
    match &cli.command {
        Command::Build(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::package::BuildRequest {
                target: args.target().name(),
                seed_demo: args.seed_demo,
                rotate_secrets: args.rotate_secrets,
                output: args.output.clone(),
            };
            let built = crate::package::build(&config, &request, &reporter as &dyn Reporter)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&built.summary()).expect("summary serialises")
                );
            } else {
                println!("{}", built.zip.display());
                println!("  sha256  {}", built.sha256);
                println!("  files   {}  ({} bytes)", built.file_count, built.zip_size);
                println!("  code    {}", built.fingerprints.code);
                if let Some(s) = &built.fingerprints.schema {
                    println!("  schema  {s}");
                }
                println!("  secrets {}", built.state_file.display());
            }
            Ok(Exit::Success)
        }
        Command::Up(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::stack::UpRequest {
                with_mocks: args.with_mocks,
                no_tls: args.no_tls,
                skip_build: args.skip_build,
                keep: true,
            };
            let up = crate::stack::up(&config, &request, &reporter)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&up).expect("outcome serialises")
                );
            } else {
                println!("run {} is up ({} ms)", up.run_id, up.elapsed_ms);
                for u in &up.urls {
                    println!("  {:<8} {:<32} {}", u.service, u.url, u.what);
                }
                match &up.state_file {
                    Some(s) => println!("  credentials  {}", s.display()),
                    None => println!("  credentials  (the package has no state file)"),
                }
                println!("  logs         {}", up.run_dir.join("logs").display());
                println!("  stop with    harness down --run {}", up.run_id);
            }
            Ok(Exit::Success)
        }
        Command::Down(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::stack::DownRequest {
                run: args.run.clone(),
                all: args.all,
            };
            let ids = crate::stack::down(&config, &request, &reporter)?;
            if cli.json {
                println!("{}", serde_json::json!({ "removed": ids }));
            } else if ids.is_empty() {
                println!("no run is up in this project");
            } else {
                for id in ids {
                    println!("removed run {id}");
                }
            }
            Ok(Exit::Success)
        }
        Command::Status(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::stack::StatusRequest {
                run: args.run.clone(),
            };
            let runs = crate::stack::status(&config, &request)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&runs).expect("status serialises")
                );
            } else if runs.is_empty() {
                println!("no run is up in this project");
            } else {
                for r in &runs {
                    let kept = if r.kept {
                        ", kept until `harness down`"
                    } else {
                        ""
                    };
                    let owner = if r.owner_alive { "running" } else { "gone" };
                    println!("run {}  (owner {} {owner}{kept})", r.id, r.owner);
                    for s in &r.services {
                        let health = s
                            .health
                            .as_deref()
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default();
                        let ports: Vec<String> = s
                            .ports
                            .iter()
                            .map(|(c, h)| format!("127.0.0.1:{h}->{c}"))
                            .collect();
                        println!(
                            "  {:<10} {:<8}{health:<10} {}",
                            s.service,
                            s.state,
                            ports.join(" ")
                        );
                    }
                }
            }
            Ok(Exit::Success)
        }
        Command::Logs(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::stack::LogsRequest {
                service: args.service.clone(),
                run: args.run.clone(),
                follow: args.follow,
            };
            crate::stack::logs(&config, &request, &mut std::io::stdout().lock())?;
            Ok(Exit::Success)
        }
    }
}
