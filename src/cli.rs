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
    /// Show or build the stack's images (app, proxy, mocks, playwright) without a registry.
    ///
    /// Each image resolves in order: present locally, pulled (the pinned public image), baked from
    /// the offline recipe in compose/images/. Baked images are labelled with their recipe hash and
    /// never rebuilt while it matches. Without --bake this lists them.
    Images(ImagesArgs),
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// List each image's source (local, pulled, baked), recipe hash, size and age.
    #[arg(long)]
    pub list: bool,
    /// Resolve every image now, baking what is missing. A second call changes nothing.
    #[arg(long)]
    pub bake: bool,
    /// Never pull from a registry (also HARNESS_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Resolution order, e.g. `bake` or `local,pull,bake` [default: local,pull,bake; env HARNESS_IMAGE_ORDER].
    #[arg(long, value_name = "LIST")]
    pub order: Option<String>,
    /// Read recipes from DIR/<name>/recipe.toml instead of the ones built into harness.
    #[arg(long, value_name = "DIR")]
    pub recipes: Option<PathBuf>,
    /// Only these images [default: all].
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
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
        Command::Images(args) => crate::images::run(
            &crate::images::Request {
                list: args.list,
                bake: args.bake,
                offline: args.offline,
                order: args.order.clone(),
                recipes: args.recipes.clone(),
                names: args.names.clone(),
                json: cli.json,
            },
            &reporter,
        ),
    }
}
