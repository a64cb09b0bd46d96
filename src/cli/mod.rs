//! Command-line surface: the argument types (one file per command group), dispatch, and the one
//! place where failures become text and an exit code. Each command parses its arguments, calls
//! one library entry point and renders what it returns; the config is loaded once, when a
//! command first needs it.
mod ci;
mod ledger;
mod project;
mod release;
mod stack;

use std::cell::OnceCell;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::Reporter;
pub use ci::*;
pub use ledger::*;
pub use project::*;
pub use release::*;
pub use stack::*;

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
    /// Write a harness.toml for an existing project, from what it has.
    ///
    /// Finds the WSGI entry point (passenger_wsgi.py, or an app.py with a Flask app), the
    /// sources, the requirements files, the database (a *.db name in the code, SQL files and
    /// their placeholders, or a seed script), the browser suite (test files importing
    /// playwright) and its pytest configuration, and .env files (a default one with no
    /// secret-looking value may ship). Every key carries a comment saying what was found; what
    /// init cannot decide is a `# TODO key = …` line to replace. Never overwrites without --force.
    Init(InitArgs),
    /// Print the environment a process of a run gets, and where each variable comes from.
    ///
    /// For the app in the stack (default; `[targets.local]`), the app in the deploy's boot check
    /// (--target webhosting) or the test job (--test). Each line names the variable's origin: an
    /// env file's line (`.env.defaults:12`), `built-in` (harness's own wiring, such as the mocks'
    /// addresses with --with-mocks), a compose override, or `inline env`. Precedence, lowest
    /// first: env files in the order given (a later file overrides an earlier one) < harness's
    /// built-ins < the inline `env`. Values of secret-looking names (SECRET, TOKEN, PASS, KEY,
    /// AUTH, ...) and passwords inside URLs are masked. Needs no Docker; values that exist only
    /// per run show as `<run>`. The seed command gets the target's env files and inline env (no
    /// built-ins) plus its HARNESS_* variables (docs/config.md, "Env files").
    ///
    /// Examples:
    ///   harness env                       the app of `harness up`
    ///   harness env --with-mocks          ... of `harness up --with-mocks`
    ///   harness env --test --with-mocks   the suite's environment
    ///   harness env --target webhosting   the boot check before a deploy
    #[command(verbatim_doc_comment)]
    Env(EnvArgs),
    /// Start the production-like stack and leave it running.
    ///
    /// Builds the local package (unless --skip-build and one exists), extracts it into the run's
    /// own directory .harness/runs/<id>/, starts app and proxy (and the mocks) on a fresh network
    /// with ephemeral ports on 127.0.0.1, waits until every service answers, then prints the URLs,
    /// the credentials file and how to stop it.
    Up(UpArgs),
    /// Remove a run's containers, network and volumes (logs stay in .harness/runs/<id>/logs/).
    Down(DownArgs),
    /// Show the runs of this project that are up (their services, state and ports), or with
    /// `webhosting`, the server: live build against the last deploy, kept releases, backups, lock.
    ///
    /// `harness status webhosting` asks url + `[stack] version` which build answers and compares it
    /// with the newest successful deploy or rollback in the ledger ("matches the last deploy" or
    /// "differs from the last deploy"), then lists, from one read-only SSH look, the releases kept
    /// beside remote_dir (rollback targets), the backups with their sha256 and why retention keeps
    /// them, and the deploy lock (free, or held by whom since when).
    Status(StatusArgs),
    /// Print a service's logs.
    Logs(LogsArgs),
    /// Run the browser suite against the exact package production gets, and record the result.
    ///
    /// Builds the local package (with --skip-build: reuses it when its inputs are unchanged),
    /// extracts it into .harness/runs/<id>/, starts app (Apache + Passenger), the TLS proxy and,
    /// with --with-mocks, the mocks; then runs pytest + Playwright in the playwright job
    /// container, as your uid, in its own writable copy of the repository (what git lists plus
    /// [test] include), from the project folder, so the project's pytest.ini / pyproject.toml /
    /// setup.cfg / tox.ini applies as on your machine. [test] requirements (with their -r
    /// includes) go into a cached venv. Browsers the suite launches itself get Debian's
    /// Chromium when they name none. pytest's output streams live. Afterwards
    /// .harness/runs/<id>/ holds report.html (one file: results, failures with screenshots,
    /// trace links, what the run wrote into its tree such as coverage.xml, slowest routes,
    /// parity, fingerprints), report/junit.xml, every service's log and the proxy's timing log
    /// (reports and traces mode 0600). The stack is removed unless --keep, and the run goes into
    /// the ledger, which the deploy gate reads; a run counts as complete only when no test was
    /// deselected or ignored and every collected test ran.
    ///
    /// The suite's environment: UI_BASE_URL, DEPLOYMENT_TARGET, DEPLOYMENT_STATE_FILE (in a
    /// writable folder), SCREENSHOT_DIR, MAILPIT_URL, MAILPIT_API_URL, MAILPIT_USERNAME,
    /// MAILPIT_PASSWORD, MOCK_NETCUP_API_URL, MOCK_GEOIP_API_URL, SSL_CERT_FILE,
    /// REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, PLAYWRIGHT_CHROMIUM, PLAYWRIGHT_SERVER_WS (with
    /// [test] playwright_server). They win over [test] env_file; [test] env wins over them
    /// (docs/test.md; `harness env --test` prints the result with each variable's origin).
    ///
    /// Examples:
    ///   harness test --with-mocks
    ///   harness test --with-mocks -k login -- -p no:cov -x
    ///   harness test --with-mocks --shard 1/3
    ///
    /// Exit 0 all passed, 1 a test failed, 2 bad arguments, 3 the stack or job failed,
    /// 130 interrupted (the run is removed and recorded as aborted).
    Test(TestArgs),
    /// Prove the local and webhosting packages hold the same code (or, --remote, that the
    /// server holds the deployed package).
    ///
    /// Rebuilds either package whose inputs changed, then compares what the zips hold, read from
    /// their bytes: files and sha256s (each checked against the zip's own MANIFEST.json), vendored
    /// versions, the entry point, Pythons and platforms, and the database schema down to columns,
    /// indexes and triggers. [parity] allow in harness.toml lists the differences that are
    /// expected. Exit 0 when only allowed differences remain, 1 naming every other one.
    Parity(ParityArgs),
    /// List recorded test runs and their history; export one as a portable record; import records.
    ///
    /// Without a subcommand: the runs in .harness/ledger.db, oldest first (--json for scripts);
    /// --html writes the run history page, --flaky lists the flaky tests.
    /// CI exports and signs a green run (`runs export ID --sign KEY`); the deployer imports it
    /// (`runs import FILE`) and it counts for the gate when the key is in [gate] trusted_keys.
    /// See docs/gate.md.
    Runs(RunsArgs),
    /// Explain what the deploy gate decides now for the package that would ship, and why.
    ///
    /// Builds the webhosting package, then looks for a recorded run that is green, has the same
    /// code and schema fingerprints, is complete (unfiltered, or all shards), is younger than
    /// [gate] max_age, and ran on the tree you have (clean, same files as its commit). Prints the
    /// deciding rule and the closest run, and records the decision in the ledger.
    /// Exit 0 when open, 4 when closed.
    Gate(GateArgs),
    /// Deploy to the webhosting server: only tested bytes, backed up, verified, rolled back on failure.
    ///
    /// Builds the webhosting package (unless --package), asks the gate (a green run of these exact
    /// bytes must be recorded; see `harness gate webhosting`), boots the zip once in the app image,
    /// then over one SSH connection ([targets.webhosting] ssh, your ~/.ssh/config, agent and
    /// known_hosts; HARNESS_SSH_CONFIG names another config file): takes a lock beside remote_dir,
    /// backs up remote_dir with a consistent database copy (also into .harness/backups/), refuses a
    /// schema change unless migrate_command or --fresh-db, uploads and checks the sha256, extracts to
    /// staging, keeps production's database, swaps the directories in one script, touches
    /// tmp/restart.txt, and waits until health is 2xx and the version is the new build id (past
    /// Passenger's 10 s restart throttle). If not, it swaps back and exits 5.
    /// Everything lives in <parent>/.<name>.harness/ beside remote_dir: lock/, staging/,
    /// releases/ (the last keep_releases), backups/ and audit.log.
    Deploy(DeployArgs),
    /// Put a kept release back live: the code goes back, production's database stays (unless --with-db).
    ///
    /// Default: the newest kept release of another build (the one before the current release);
    /// --to NAME|BUILD picks any kept release (`harness status webhosting` lists them). Under the
    /// deploy lock (refused, exit 4, when production's schema differs from the one that release
    /// ran with): the kept release is linked to production's shared database (on a server no
    /// deploy has moved yet, the database is copied into it), the directories are swapped in one script,
    /// tmp/restart.txt is touched, and health 2xx plus the release's build as `[stack] version`
    /// shows it are awaited past Passenger's 10 s throttle. If it does not answer, the
    /// release that was live goes back (exit 5). The live release is kept under releases/, so
    /// `rollback --to` it returns to it. Audit logs and the ledger record it.
    ///
    /// --with-db also restores that release's database: the newest backup taken while its build
    /// was live. It first prints the rows per table production has now against that backup, and
    /// how old the backup is, then asks on a terminal; --yes confirms for scripts. Without a
    /// terminal and without --yes it refuses (exit 4). A backup of what is live is taken first.
    Rollback(RollbackArgs),
    /// Back up the server's app directory, its database included, without deploying.
    ///
    /// Under the deploy lock: a tar.gz of remote_dir with a consistent copy of the database
    /// (SQLite's backup API through python3), in <parent>/.<name>.harness/backups/<stamp>-<live build>.tar.gz, copied to
    /// .harness/backups/webhosting-<name>.tar.gz, its sha256 checked on both ends and recorded in
    /// the ledger. Then retention, on the server and here: the newest keep_backups (5), one a day
    /// for keep_daily days (7), one a week for keep_weekly weeks (4), and each kept release's
    /// database backup. Made for cron and systemd timers (docs/deploy.md). Exit 4 when a deploy or
    /// rollback holds the lock.
    Backup(BackupArgs),
    /// Show or build the stack's images (app, proxy, mocks, playwright) without a registry.
    ///
    /// Each image resolves in order: present locally, pulled (the pinned public image), baked from
    /// the offline recipe in compose/images/. Baked images are labelled with their recipe hash and
    /// never rebuilt while it matches. Without --bake this lists them.
    Images(ImagesArgs),
    /// Show the project's local certificate authority and how to trust it, or rotate it.
    ///
    /// The CA lives in .harness/ca/ (key mode 0600) and is reused across runs; stacks get
    /// short-lived leaf certificates from it. --fqdn also issues a leaf for that name into
    /// .harness/certs/. --rotate replaces the CA: everything that trusted the old one must be
    /// given the new ca.pem.
    Certs(CertsArgs),
    /// Generate the CI pipeline: the suite in N shards, signed run records, the gate (docs/scale.md).
    ///
    /// `harness ci github` writes .github/workflows/harness.yml (and .github/zizmor.yml, the
    /// policy that lets zizmor accept tag pins for GitHub's own actions) from [ci] in
    /// harness.toml: a matrix of N jobs, each running `harness test --with-mocks --shard i/N`
    /// and uploading report.html, junit.xml and its run record; on pushes to [ci] branch each
    /// record is signed with the HARNESS_SIGNING_KEY secret and a gate job imports all N and runs
    /// `harness gate webhosting`. `[ci] deploy = true` adds a deploy job behind the `webhosting`
    /// environment. Pull requests run unsigned, with no secret reachable.
    ///
    /// Examples:
    ///   harness ci github --shards 4     write the workflow for 4 shards
    ///   harness ci github --check        exit 1 with a diff when the committed file is stale
    ///
    /// Exit 0 written (or, with --check, current), 1 stale, 2 bad configuration.
    #[command(verbatim_doc_comment)]
    Ci(CiArgs),
    /// Run one of the stand-in services the stack uses: netcup, geoip or mailpit.
    ///
    /// Serves until SIGINT/SIGTERM. It prints the bound addresses as one JSON line on stdout,
    /// e.g. {"service":"netcup","http":"127.0.0.1:8080"}, so `--port 0` (a free port) can be used
    /// and discovered. Flags, environment variables and endpoints: mocks/README.md.
    Mock {
        #[command(subcommand)]
        mock: harness_mocks::cli::MockCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Local,
    Webhosting,
}

impl Target {
    pub fn model(self) -> crate::model::target::Target {
        match self {
            Target::Local => crate::model::target::Target::Local,
            Target::Webhosting => crate::model::target::Target::Webhosting,
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

/// What every command gets: the parsed line, the reporter, and the config, loaded on first use.
pub(crate) struct Ctx<'a> {
    pub cli: &'a Cli,
    pub reporter: &'a dyn Reporter,
    config: OnceCell<Config>,
}

impl Ctx<'_> {
    /// harness.toml (or --config), loaded once.
    pub fn config(&self) -> Result<&Config, Failure> {
        if let Some(c) = self.config.get() {
            return Ok(c);
        }
        let loaded = Config::load(&self.cli.project, self.cli.config.as_deref())?;
        Ok(self.config.get_or_init(|| loaded))
    }

    pub fn json(&self) -> bool {
        self.cli.json
    }

    /// Where the project (and its .harness/) is: the config file's folder, as `Config::load`
    /// has it.
    pub fn root(&self) -> PathBuf {
        match &self.cli.config {
            Some(file) => std::path::absolute(file)
                .ok()
                .and_then(|f| f.parent().map(PathBuf::from))
                .unwrap_or_else(|| self.cli.project.clone()),
            None => self.cli.project.clone(),
        }
    }
}

fn dispatch(cli: &Cli) -> Result<Exit, Failure> {
    // HARNESS_EVENTS=json turns the progress lines into JSON lines (events::JsonReporter).
    let reporter = crate::events::from_env();
    let ctx = Ctx {
        cli,
        reporter: &*reporter,
        config: OnceCell::new(),
    };
    // Every command first removes what crashed runs left behind (DESIGN.md, "Stack"). The mocks
    // are the exception: they run inside the stack's own containers, with no Docker to sweep.
    if !matches!(
        cli.command,
        Command::Mock { .. } | Command::Init(_) | Command::Env(_) | Command::Ci(_)
    ) {
        crate::stack::sweep::at_start(&*reporter);
        // .harness/ holds secrets (state copies, packages with the app's database, backups of
        // production): only its owner may enter it, whatever an older harness or the umask made.
        let root = ctx.root();
        if root.join(crate::config::FILE_NAME).is_file() {
            crate::fsutil::secure_state_dir(&root)?;
        }
    }
    match &cli.command {
        Command::Init(args) => project::init(&ctx, args),
        Command::Env(args) => project::env(&ctx, args),
        Command::Build(args) => project::build(&ctx, args),
        Command::Certs(args) => project::certs(&ctx, args),
        Command::Mock { mock } => run_mock(mock),
        Command::Ci(args) => ci::ci(&ctx, args),
        Command::Runs(args) => ledger::runs(&ctx, args),
        Command::Gate(args) => ledger::gate(&ctx, args),
        Command::Deploy(args) => release::deploy(&ctx, args),
        Command::Rollback(args) => release::rollback(&ctx, args),
        Command::Backup(args) => release::backup(&ctx, args),
        Command::Status(StatusArgs {
            target: Some(DeployTarget::Webhosting),
            ..
        }) => release::status_webhosting(&ctx),
        Command::Parity(args) => release::parity(&ctx, args),
        Command::Up(args) => stack::up(&ctx, args),
        Command::Test(args) => stack::test(&ctx, args),
        Command::Down(args) => stack::down(&ctx, args),
        Command::Status(args) => stack::status(&ctx, args),
        Command::Logs(args) => stack::logs(&ctx, args),
        Command::Images(args) => stack::images(&ctx, args),
    }
}

/// `harness mock …`: the mocks crate's own command line, its errors mapped to our exit codes.
fn run_mock(mock: &harness_mocks::cli::MockCommand) -> Result<Exit, Failure> {
    harness_mocks::cli::run(mock.clone()).map_err(|e| {
        let exit = match e.kind() {
            harness_mocks::ErrorKind::BadInput => Exit::BadInput,
            harness_mocks::ErrorKind::Environment => Exit::Environment,
        };
        let failure = Failure::new(exit, e.to_string());
        match e.hint() {
            Some(h) => failure.hint(h),
            None => failure,
        }
    })?;
    Ok(Exit::Success)
}

/// `--json` output: one pretty-printed document on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON output serialises")
    );
}
