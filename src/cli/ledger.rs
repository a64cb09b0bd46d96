//! The ledger and the gate: `runs`, `gate`.
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{Ctx, print_json};
use crate::error::{Exit, Failure};

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// Only the newest N runs (still listed oldest first). With --html and --flaky: the
    /// newest N runs they look at (default 500).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Write the run history, one static HTML page (no script, nothing loaded from elsewhere),
    /// to FILE (default .harness/history.html, which `harness test` also refreshes after each
    /// run) and print its path. It shows each run's time and outcome, each test's durations,
    /// flaky tests, tests that got slower and the slowest routes.
    #[arg(long, value_name = "FILE", num_args = 0..=1, conflicts_with = "flaky")]
    pub html: Option<Option<PathBuf>>,
    /// List flaky tests: tests that failed (or errored) and passed in runs of the same code
    /// fingerprint, with those runs (--json: [{test, code_fingerprint, failed_runs,
    /// passed_runs}]).
    #[arg(long)]
    pub flaky: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Write run ID as a JSON record (stdout, or --output), signed with KEY when given.
    ///
    /// The signature is ed25519 over "harness-run-record/2\n" followed by the record's canonical
    /// JSON (RFC 8785: sorted keys, no whitespace). Records imported as /1 keep /1.
    Export {
        /// The run's id, as `harness runs` lists it, or `last` for the newest run (what a CI job
        /// that ran one suite exports).
        #[arg(value_parser = parse_run_ref)]
        id: RunRef,
        /// An ed25519 private key, PKCS#8 PEM (`harness runs keygen FILE`, or
        /// `openssl genpkey -algorithm ed25519 -out FILE`).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Store exported records: files, or folders searched for *.json (CI artifacts). Only those
    /// signed by a key in [gate] trusted_keys can open the gate; others are stored and shown,
    /// and `gate` says why they do not count. The order of imports never matters: a copy of a
    /// stored run adds its signature to it, a signed copy replaces an unsigned import, and a
    /// copy that differs from its own signature (or from a signed copy) is refused and stored
    /// nowhere. One line per file; exit 2 when any file was refused, after importing the rest.
    Import {
        #[arg(required = true, value_name = "FILE|DIR")]
        files: Vec<PathBuf>,
    },
    /// Create an ed25519 signing key (PKCS#8 PEM, mode 0600) and print its public key for
    /// [gate] trusted_keys.
    Keygen {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// A run named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRef {
    Id(i64),
    Last,
}

fn parse_run_ref(text: &str) -> Result<RunRef, String> {
    match text {
        "last" => Ok(RunRef::Last),
        _ => text
            .parse()
            .map(RunRef::Id)
            .map_err(|_| format!("`{text}` is neither a run id nor `last`")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GateTarget {
    Webhosting,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// The deploy target whose gate to check.
    #[arg(value_enum)]
    pub target: GateTarget,
    /// Let a run count although the tree has uncommitted changes or differs from the run's
    /// commit. The decision records it.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Open the gate regardless of the rules; needs --reason, and both are recorded.
    #[arg(long, requires = "reason")]
    pub force: bool,
    /// Why the gate is forced (required with --force).
    #[arg(long, requires = "force", value_name = "TEXT")]
    pub reason: Option<String>,
}

pub(super) fn runs(ctx: &Ctx, args: &RunsArgs) -> Result<Exit, Failure> {
    use crate::gatekeeper as gk;
    match &args.action {
        None if args.html.is_some() => {
            let ledger = gk::open_ledger(&ctx.root())?;
            let path = match args.html.clone().flatten() {
                Some(file) => file,
                None => crate::history::page_path(&ctx.root()),
            };
            let window = Some(args.limit.unwrap_or(crate::history::DEFAULT_WINDOW));
            crate::history::write_page(&ledger, &path, window)?;
            if ctx.json() {
                print_json(&serde_json::json!({ "html": path }));
            } else {
                println!("{}", path.display());
            }
        }
        None if args.flaky => {
            let ledger = gk::open_ledger(&ctx.root())?;
            let window = Some(args.limit.unwrap_or(crate::history::DEFAULT_WINDOW));
            let history = crate::history::load(&ledger, window)?;
            let flaky = crate::history::flaky(&history);
            if ctx.json() {
                print_json(&flaky);
            } else {
                print!("{}", flaky_table(&history, &flaky));
            }
        }
        None => {
            let ledger = gk::open_ledger(&ctx.root())?;
            let runs = match args.limit {
                Some(n) => ledger.newest_runs(n)?,
                None => ledger.runs()?,
            };
            if ctx.json() {
                gk::write_runs_json(&runs, std::io::stdout().lock()).map_err(|e| {
                    Failure::new(Exit::Environment, format!("cannot write the runs: {e}"))
                })?;
            } else {
                print!("{}", gk::runs_table(&runs));
            }
        }
        Some(RunsAction::Export { id, sign, output }) => {
            let ledger = gk::open_ledger(&ctx.root())?;
            let id = match id {
                RunRef::Id(n) => *n,
                RunRef::Last => ledger
                    .newest_runs(1)?
                    .first()
                    .map(|r| r.id)
                    .ok_or_else(|| {
                        Failure::new(
                            Exit::BadInput,
                            format!("no run recorded in {}", ledger.path().display()),
                        )
                        .hint("run `harness test` first; `harness runs` lists what is recorded")
                    })?,
            };
            let text = gk::export(&ledger, id, sign.as_deref())?;
            match output {
                Some(path) => std::fs::write(path, text).map_err(|e| {
                    Failure::new(
                        Exit::Environment,
                        format!("cannot write {}: {e}", path.display()),
                    )
                })?,
                None => print!("{text}"),
            }
        }
        Some(RunsAction::Import { files }) => {
            let config = ctx.config()?;
            let mut ledger = gk::open_ledger(&config.root)?;
            let mut imported = Vec::new();
            // Every file is tried; the exit code says whether any was refused.
            let mut worst: Option<Exit> = None;
            for file in gk::import_files(files) {
                let outcome = file
                    .and_then(|f| gk::import(config, &mut ledger, &f).map(|report| (f, report)));
                match outcome {
                    Ok((file, report)) => {
                        let line = gk::describe_import(&file, &report);
                        // Warnings go to stderr in both modes, so a script sees them without
                        // parsing.
                        if !report.counts() {
                            eprintln!("warning: {line}");
                        } else if !ctx.json() {
                            println!("{line}");
                        }
                        imported.push(gk::import_json(&file, &report));
                    }
                    Err(failure) => {
                        eprintln!("error: {failure}");
                        // A damaged or unusable ledger stops the rest: nothing more can land.
                        if failure.exit == Exit::Environment {
                            return Err(failure);
                        }
                        worst.get_or_insert(failure.exit);
                    }
                }
            }
            if ctx.json() {
                print_json(&imported);
            }
            if let Some(exit) = worst {
                return Ok(exit);
            }
        }
        Some(RunsAction::Keygen { file }) => {
            let key = gk::keygen(file)?;
            if ctx.json() {
                let v = serde_json::json!({ "file": file, "public_key": key.public_key().to_string(), "key_id": key.public_key().id() });
                println!("{v}");
                return Ok(Exit::Success);
            }
            println!("wrote {} (ed25519, PKCS#8 PEM, mode 0600)", file.display());
            println!("public key: {}", key.public_key());
            println!(
                "trust it in harness.toml:\n  [gate]\n  trusted_keys = [{{ name = \"ci\", key = \"{}\" }}]",
                key.public_key()
            );
            println!(
                "store the private key as the CI secret {secret} (never in the repository), e.g.\n  \
                 gh secret set {secret} < {file}\nthe workflow `harness ci github` writes signs with it (docs/scale.md)",
                secret = crate::ci::github::SIGNING_SECRET,
                file = file.display()
            );
        }
    }
    Ok(Exit::Success)
}

/// `runs --flaky` for a terminal: one line per test and code fingerprint, or why there are none.
fn flaky_table(history: &crate::history::History, flaky: &[crate::history::Flaky]) -> String {
    let looked = if history.total_runs > history.runs.len() {
        format!(
            "the newest {} of {} runs",
            history.runs.len(),
            history.total_runs
        )
    } else {
        format!("{} run(s)", history.runs.len())
    };
    if flaky.is_empty() {
        return format!(
            "no flaky tests in {looked}: no test both failed and passed on the same code\n"
        );
    }
    let ids = |ids: &[i64]| {
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let width = flaky
        .iter()
        .map(|f| f.test.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{} flaky test(s) in {looked} (failed and passed on the same code fingerprint):\n\
         {:<width$}  {:<12}  {:<16}  {}\n",
        flaky.len(),
        "TEST",
        "CODE",
        "FAILED IN RUNS",
        "PASSED IN RUNS"
    );
    for f in flaky {
        out.push_str(&format!(
            "{:<width$}  {:<12}  {:<16}  {}\n",
            f.test,
            f.code_fingerprint.get(..12).unwrap_or(&f.code_fingerprint),
            ids(&f.failed_runs),
            ids(&f.passed_runs)
        ));
    }
    out
}

pub(super) fn gate(ctx: &Ctx, args: &GateArgs) -> Result<Exit, Failure> {
    let force = match (&args.reason, args.force) {
        (Some(reason), true) => Some(crate::gate::Force::new(reason).map_err(|e| {
            Failure::new(Exit::BadInput, e.to_string())
                .hint("say why, e.g. --reason \"hotfix for #123, tested by hand\"")
        })?),
        _ => None,
    };
    let config = ctx.config()?;
    let request = crate::gatekeeper::GateRequest {
        allow_dirty: args.allow_dirty,
        force,
    };
    let outcome = crate::gatekeeper::check(config, &request, ctx.reporter)?;
    if ctx.json() {
        println!("{}", crate::gatekeeper::decision_json(&outcome));
    } else {
        print!("{}", crate::gatekeeper::decision_text(&outcome));
    }
    Ok(if outcome.decision.open {
        Exit::Success
    } else {
        Exit::Refused
    })
}
