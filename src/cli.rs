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
    /// List recorded test runs; export one as a portable record; import records.
    ///
    /// Without a subcommand: the runs in .harness/ledger.db, oldest first (--json for scripts).
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
pub enum DeployTarget {
    Webhosting,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deploy target.
    #[arg(value_enum)]
    pub target: DeployTarget,
    /// Ship this webhosting deploy.zip instead of building one; the gate checks its bytes.
    #[arg(long, value_name = "FILE")]
    pub package: Option<PathBuf>,
    /// With --fresh-db: copy production's `settings` secret_key into the new database, byte for
    /// byte, so sessions and signed tokens stay valid. (Without --fresh-db the whole database is
    /// kept anyway.)
    #[arg(long)]
    pub preserve_secret_key: bool,
    /// Replace production's database with the package's (the backup keeps the old one).
    #[arg(long)]
    pub fresh_db: bool,
    /// Seed the database again even when the seed cache holds it for these exact inputs (sources,
    /// seed command and its files, SQL, env, state file as the last seed left it).
    #[arg(long, conflicts_with = "package")]
    pub reseed: bool,
    /// Check every precondition (gate, boot check, SSH, disk space, lock, schema) and print the
    /// plan, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let a green run count although the tree has uncommitted changes (recorded).
    #[arg(long)]
    pub allow_dirty: bool,
    /// Remove a lock left by another deploy (the message names its holder) and proceed.
    #[arg(long)]
    pub break_lock: bool,
    /// Deploy although the gate (and the boot check) say no; needs --reason, both are recorded.
    #[arg(long)]
    pub force: bool,
    /// Why the deploy is forced (required with --force).
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The deploy target.
    #[arg(value_enum)]
    pub target: DeployTarget,
    /// The kept release to put back: its name under releases/ or its build id
    /// [default: the release before the current one].
    #[arg(long, value_name = "ID")]
    pub to: Option<String>,
    /// Also restore that release's database backup (shows what would be lost, then asks).
    #[arg(long)]
    pub with_db: bool,
    /// Confirm --with-db without asking (for scripts).
    #[arg(long, requires = "with_db")]
    pub yes: bool,
    /// Check everything (release, backup, schema, lock) and print the plan, changing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove a lock left by another deploy, rollback or backup and proceed.
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The deploy target.
    #[arg(value_enum)]
    pub target: DeployTarget,
    /// Instead of taking a backup, run a restore drill on one (the newest without ID): its local
    /// copy (sha256 checked against the ledger) is unpacked into a local stack (app image behind
    /// the TLS proxy), its database must pass PRAGMA integrity_check, and [test] smoke (default
    /// `-m smoke`) runs against it in the playwright job. Recorded in the ledger; exit 0 good,
    /// 1 damaged or a smoke test failed.
    #[arg(long, value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub verify: Option<String>,
    /// Remove a lock left by another deploy, rollback or backup and proceed.
    #[arg(long)]
    pub break_lock: bool,
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// Compare the deployed webhosting package with the files on the server instead (one ssh
    /// command lists every file's sha256; logs, tmp/, the bytecode Python writes beside its sources
    /// and the database's content are runtime state; stray bytecode and symlinks are reported; the
    /// database's schema is compared).
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// Issue a leaf certificate for this name (default: [stack] fqdn).
    #[arg(long, value_name = "NAME")]
    pub fqdn: Option<String>,
    /// Replace the CA with a new one.
    #[arg(long)]
    pub rotate: bool,
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
    /// Seed the database again even when the seed cache holds it for these exact inputs (sources,
    /// seed command and its files, SQL, env, state file as the last seed left it).
    #[arg(long, conflicts_with = "skip_build")]
    pub reseed: bool,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Also start the mail catcher, GeoIP and Netcup mocks and point the app at them. Without
    /// it, tests marked `mocks` are deselected (and the run does not count as complete).
    #[arg(long)]
    pub with_mocks: bool,
    /// Reuse .harness/dist/local/deploy.zip when its input fingerprint matches the sources
    /// (builds anyway when it is missing or stale).
    #[arg(long)]
    pub skip_build: bool,
    /// Seed the database again even when the seed cache holds it for these exact inputs (sources,
    /// seed command and its files, SQL, env, state file as the last seed left it).
    #[arg(long, conflicts_with = "skip_build")]
    pub reseed: bool,
    /// Leave the stack up afterwards; prints its addresses and how to stop it.
    #[arg(long)]
    pub keep: bool,
    /// Run part I of N, split by test file (sorted, file k goes to shard k mod N + 1): N machines
    /// together run the whole suite, each file once. The ledger records the shard.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::run::Shard>,
    /// Only tests matching this pytest keyword expression.
    #[arg(short = 'k', value_name = "EXPR")]
    pub keyword: Option<String>,
    /// Serve plain HTTP on the proxy (debugging only).
    #[arg(long)]
    pub no_tls: bool,
    /// Test files, folders or node ids inside [test] path (e.g. ui_tests/test_dns.py or
    /// ui_tests/test_admin.py::test_login), relative to here or to the project.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// After `--`: more pytest arguments, after [test] args (e.g. `-- -p no:cov -m smoke -x`).
    /// Recorded in the ledger; a run that deselects tests is not complete. --junitxml, --output,
    /// --co and `-p no:harness_pytest` are refused (harness needs them).
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pub pytest_args: Vec<String>,
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
    /// `webhosting`: the server instead of the local runs.
    #[arg(value_enum, conflicts_with = "run")]
    pub target: Option<DeployTarget>,
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
pub struct InitArgs {
    /// Replace an existing harness.toml.
    #[arg(long)]
    pub force: bool,
    /// Print the file instead of writing it.
    #[arg(long, conflicts_with = "force")]
    pub print: bool,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Whose app: local (the stack) or webhosting (the deploy's boot check).
    #[arg(long, value_enum, default_value = "local", conflicts_with = "test")]
    pub target: Target,
    /// The test job's environment instead of the app's.
    #[arg(long)]
    pub test: bool,
    /// As `harness up/test --with-mocks` (the app is pointed at the mocks).
    #[arg(long)]
    pub with_mocks: bool,
    /// As `harness up --no-tls`.
    #[arg(long)]
    pub no_tls: bool,
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
    /// Generate new secrets instead of reusing those in deployment_state_<target>.json (seeds again).
    #[arg(long)]
    pub rotate_secrets: bool,
    /// Seed the database again even when the seed cache holds it for these exact inputs (sources,
    /// seed command and its files, SQL, env, state file as the last seed left it).
    #[arg(long)]
    pub reseed: bool,
    /// Write the zip here instead of .harness/dist/<target>/deploy.zip.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// Only the newest N runs (still listed oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Write run ID as a JSON record (stdout, or --output), signed with KEY when given.
    ///
    /// The signature is ed25519 over "harness-run-record/2\n" followed by the record's canonical
    /// JSON (RFC 8785: sorted keys, no whitespace). Records imported as /1 keep /1.
    Export {
        /// The run's id, as `harness runs` lists it.
        id: i64,
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
    // Every command first removes what crashed runs left behind (DESIGN.md, "Stack"). The mocks
    // are the exception: they run inside the stack's own containers, with no Docker to sweep.
    if !matches!(
        cli.command,
        Command::Mock { .. } | Command::Init(_) | Command::Env(_)
    ) {
        crate::stack::sweep::at_start(&reporter);
        // .harness/ holds secrets (state copies, packages with the app's database, backups of
        // production): only its owner may enter it, whatever an older harness or the umask made.
        let root = project_root(cli);
        if root.join(crate::config::FILE_NAME).is_file() {
            crate::fsutil::secure_state_dir(&root)?;
        }
    }
    match &cli.command {
        Command::Init(args) => {
            let root = project_root(cli);
            let done = crate::init::init(
                &root,
                &crate::init::InitRequest {
                    force: args.force,
                    print: args.print,
                },
            )?;
            if args.print {
                print!("{}", done.text);
            } else {
                println!("wrote {}", done.file.display());
                let todos: Vec<&str> = done
                    .text
                    .lines()
                    .filter(|l| l.starts_with(crate::init::TODO))
                    .collect();
                if todos.is_empty() {
                    println!("  nothing left to decide; try `harness build`");
                } else {
                    println!(
                        "  {} TODO lines to fill in (replace each with its key and value):",
                        todos.len()
                    );
                    for t in todos {
                        println!("    {t}");
                    }
                }
            }
            Ok(Exit::Success)
        }
        Command::Env(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            use crate::env_report::Subject;
            let subject = match (args.test, args.target) {
                (true, _) => Subject::TestJob {
                    with_mocks: args.with_mocks,
                    no_tls: args.no_tls,
                },
                (false, Target::Local) => Subject::StackApp {
                    with_mocks: args.with_mocks,
                    no_tls: args.no_tls,
                },
                (false, Target::Webhosting) if args.with_mocks || args.no_tls => {
                    return Err(Failure::new(
                        Exit::BadInput,
                        "--with-mocks and --no-tls describe the stack, not the boot check",
                    )
                    .hint("drop them, or ask for the stack's app: harness env --with-mocks"));
                }
                (false, Target::Webhosting) => Subject::BootCheck,
            };
            let report = crate::env_report::report(&config, subject)?;
            if cli.json {
                print_json(&report);
            } else {
                print!("{}", crate::env_report::text(&report));
            }
            Ok(Exit::Success)
        }
        Command::Build(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::package::BuildRequest {
                target: args.target().name(),
                seed_demo: args.seed_demo,
                rotate_secrets: args.rotate_secrets,
                reseed: args.reseed,
                output: args.output.clone(),
            };
            let built = crate::gatekeeper::build(&config, &request, &reporter as &dyn Reporter)?;
            if cli.json {
                print_json(&built.summary());
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
        Command::Mock { mock } => {
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
        Command::Runs(args) => runs(cli, args),
        Command::Deploy(args) => deploy(cli, args, &reporter),
        Command::Rollback(args) => rollback(cli, args, &reporter),
        Command::Backup(args) => backup(cli, args, &reporter),
        Command::Status(StatusArgs {
            target: Some(DeployTarget::Webhosting),
            ..
        }) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let s = crate::deploy::status::status(&config)?;
            if cli.json {
                print_json(&s);
            } else {
                print!("{}", crate::deploy::status::text(&s));
            }
            Ok(Exit::Success)
        }
        Command::Gate(args) => gate(cli, args, &reporter),
        Command::Parity(args) => parity(cli, args, &reporter),
        Command::Certs(args) => certs(cli, args),
        Command::Up(args) => {
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let request = crate::stack::UpRequest {
                with_mocks: args.with_mocks,
                no_tls: args.no_tls,
                skip_build: args.skip_build,
                reseed: args.reseed,
                keep: true,
            };
            let up = crate::stack::up(&config, &request, &reporter)?;
            if cli.json {
                print_json(&up);
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
        Command::Test(args) => test(cli, args, &reporter),
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
                print_json(&runs);
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
        Command::Images(args) => {
            let report = crate::images::run(
                &crate::images::Request {
                    list: args.list,
                    bake: args.bake,
                    offline: args.offline,
                    order: args.order.clone(),
                    recipes: args.recipes.clone(),
                    names: args.names.clone(),
                },
                &reporter,
            )?;
            if cli.json {
                // One JSON document per part, as before: the baked images, then the listing.
                if let Some(baked) = &report.baked {
                    print_json(baked);
                }
                if let Some(listed) = &report.listed {
                    print_json(listed);
                }
            } else {
                print!("{}", crate::images::text(&report));
            }
            Ok(Exit::Success)
        }
    }
}

/// Where the project (and its .harness/) is: the config file's folder, as `Config::load` has it.
fn project_root(cli: &Cli) -> PathBuf {
    match &cli.config {
        Some(file) => std::path::absolute(file)
            .ok()
            .and_then(|f| f.parent().map(PathBuf::from))
            .unwrap_or_else(|| cli.project.clone()),
        None => cli.project.clone(),
    }
}

fn runs(cli: &Cli, args: &RunsArgs) -> Result<Exit, Failure> {
    use crate::gatekeeper as gk;
    match &args.action {
        None => {
            let ledger = gk::open_ledger(&project_root(cli))?;
            let runs = match args.limit {
                Some(n) => ledger.newest_runs(n)?,
                None => ledger.runs()?,
            };
            if cli.json {
                gk::write_runs_json(&runs, std::io::stdout().lock()).map_err(|e| {
                    Failure::new(Exit::Environment, format!("cannot write the runs: {e}"))
                })?;
            } else {
                print!("{}", gk::runs_table(&runs));
            }
        }
        Some(RunsAction::Export { id, sign, output }) => {
            let ledger = gk::open_ledger(&project_root(cli))?;
            let text = gk::export(&ledger, *id, sign.as_deref())?;
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
            let config = Config::load(&cli.project, cli.config.as_deref())?;
            let mut ledger = gk::open_ledger(&config.root)?;
            let mut imported = Vec::new();
            // Every file is tried; the exit code says whether any was refused.
            let mut worst: Option<Exit> = None;
            for file in gk::import_files(files) {
                let outcome = file
                    .and_then(|f| gk::import(&config, &mut ledger, &f).map(|report| (f, report)));
                match outcome {
                    Ok((file, report)) => {
                        let line = gk::describe_import(&file, &report);
                        // Warnings go to stderr in both modes, so a script sees them without
                        // parsing.
                        if !report.counts() {
                            eprintln!("warning: {line}");
                        } else if !cli.json {
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
            if cli.json {
                print_json(&imported);
            }
            if let Some(exit) = worst {
                return Ok(exit);
            }
        }
        Some(RunsAction::Keygen { file }) => {
            let key = gk::keygen(file)?;
            if cli.json {
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
        }
    }
    Ok(Exit::Success)
}

fn parity(cli: &Cli, args: &ParityArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    let clean = if args.remote {
        crate::parity::remote::server(&config)?;
        let package = last_deployed_package(&config)?;
        let outcome = crate::parity::remote::run(&config, &package, reporter)?;
        if cli.json {
            print_json(&outcome);
        } else {
            print!("{}", crate::parity::remote::table(&outcome));
        }
        outcome.report.is_clean()
    } else {
        let outcome = crate::parity::run(&config, reporter)?;
        if cli.json {
            print_json(&outcome);
        } else {
            print!("{}", crate::parity::table(&outcome));
        }
        outcome.clean
    };
    Ok(if clean { Exit::Success } else { Exit::Failed })
}

/// The package production should run, by the ledger (the newest successful deploy or rollback),
/// from its copy in .harness/deployed/.
fn last_deployed_package(config: &Config) -> Result<PathBuf, Failure> {
    let ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let Some(live) = ledger.live("webhosting")? else {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "{} records no successful deploy to webhosting, so there is no deployed package to compare the server with",
                ledger.path().display()
            ),
        )
        .hint("parity --remote compares the server with the package of the last `harness deploy webhosting` from this project"));
    };
    let Some(sha) = &live.package_sha256 else {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "production runs build {} since {} #{} ({} UTC), and no deploy recorded its package",
                live.build_id.as_deref().unwrap_or("unknown"),
                live.via,
                live.id,
                live.at.short()
            ),
        )
        .hint("deploy from this project once; parity --remote then compares with that package"));
    };
    let zip = crate::deploy::deployed_zip(&config.root, sha);
    if !zip.is_file() {
        return Err(Failure::new(
            Exit::BadInput,
            format!(
                "the package of the last deploy ({} #{}, build {}) is not in {}",
                live.via,
                live.id,
                live.build_id.as_deref().unwrap_or("unknown"),
                zip.display()
            ),
        )
        .hint("deploy keeps every shipped zip there (pruned with keep_releases); deploy again to compare"));
    }
    Ok(zip)
}

fn rollback(cli: &Cli, args: &RollbackArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    let request = crate::deploy::rollback::RollbackRequest {
        to: args.to.clone(),
        with_db: args.with_db,
        yes: args.yes,
        dry_run: args.dry_run,
        break_lock: args.break_lock,
    };
    // --with-db asks on a terminal only; a script must say --yes.
    let ask = |question: &str| -> Option<bool> {
        use std::io::{BufRead, IsTerminal, Write};
        if !std::io::stdin().is_terminal() {
            return None;
        }
        eprint!("{question}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).ok()?;
        Some(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
    };
    let r = crate::deploy::rollback::rollback(&config, &request, reporter, &ask)?;
    if cli.json {
        // Through a Value, so the keys come out sorted as they always have.
        print_json(&serde_json::to_value(&r).expect("receipt serialises"));
    } else if r.dry_run {
        println!(
            "dry run: release {} (build {}) can go live on {}:{}; the plan:",
            r.release, r.to_build, r.destination, r.remote_dir
        );
        print_plan(&r.plan);
    } else {
        println!(
            "rolled back {}:{} to build {} (release {}) in {:.1} s",
            r.destination,
            r.remote_dir,
            r.to_build,
            r.release,
            r.elapsed_ms as f64 / 1000.0
        );
        match &r.db_backup {
            Some(b) => println!("  database  restored from backup {b}"),
            None => println!("  database  production's, kept"),
        }
        if let Some(b) = &r.safety_backup {
            println!("  backup    {} (what was live before)", b.display());
        }
        if let Some(from) = &r.from_build {
            println!("  back with harness rollback webhosting --to {from}");
        }
    }
    Ok(Exit::Success)
}

fn backup(cli: &Cli, args: &BackupArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    if let Some(id) = &args.verify {
        return verify_backup(
            cli,
            &config,
            (!id.is_empty()).then_some(id.as_str()),
            reporter,
        );
    }
    let request = crate::deploy::backup::BackupRequest {
        break_lock: args.break_lock,
    };
    let r = crate::deploy::backup::backup(&config, &request, reporter)?;
    if cli.json {
        print_json(&r);
    } else {
        println!("backup {} ({} bytes)", r.name, r.size);
        println!(
            "  sha256  {} (checked on both ends, in the ledger)",
            r.sha256
        );
        println!("  server  {}", r.remote);
        println!("  local   {}", r.local.display());
        println!(
            "  kept    {} on the server ({}); pruned {}",
            r.kept.len(),
            r.policy,
            if r.pruned.is_empty() {
                "none".to_string()
            } else {
                r.pruned.join(", ")
            }
        );
    }
    Ok(Exit::Success)
}

fn gate(cli: &Cli, args: &GateArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let force = match (&args.reason, args.force) {
        (Some(reason), true) => Some(crate::gate::Force::new(reason).map_err(|e| {
            Failure::new(Exit::BadInput, e.to_string())
                .hint("say why, e.g. --reason \"hotfix for #123, tested by hand\"")
        })?),
        _ => None,
    };
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    let request = crate::gatekeeper::GateRequest {
        allow_dirty: args.allow_dirty,
        force,
    };
    let outcome = crate::gatekeeper::check(&config, &request, reporter)?;
    if cli.json {
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

fn deploy(cli: &Cli, args: &DeployArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let force = match (args.force, &args.reason) {
        (true, Some(reason)) => Some(crate::gate::Force::new(reason).map_err(|e| {
            Failure::new(Exit::BadInput, e.to_string())
                .hint("say why, e.g. --reason \"hotfix for #123, tested by hand\"")
        })?),
        (true, None) => {
            return Err(Failure::new(Exit::BadInput, "--force needs --reason TEXT")
                .hint("say why, e.g. --force --reason \"hotfix for #123, tested by hand\"; it is recorded"));
        }
        (false, Some(_)) => {
            return Err(Failure::new(
                Exit::BadInput,
                "--reason is only used with --force",
            ));
        }
        (false, None) => None,
    };
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    let request = crate::deploy::DeployRequest {
        package: args.package.clone(),
        preserve_secret_key: args.preserve_secret_key,
        fresh_db: args.fresh_db,
        reseed: args.reseed,
        dry_run: args.dry_run,
        allow_dirty: args.allow_dirty,
        break_lock: args.break_lock,
        force,
    };
    let receipt = crate::deploy::deploy(&config, &request, reporter)?;
    if cli.json {
        print_json(&serde_json::to_value(&receipt).expect("receipt serialises"));
    } else if receipt.dry_run {
        println!(
            "dry run: every precondition holds; the plan for build {} on {}:{}",
            receipt.build_id, receipt.destination, receipt.remote_dir
        );
        print_plan(&receipt.plan);
    } else {
        println!(
            "deployed build {} to {}:{} in {:.1} s",
            receipt.build_id,
            receipt.destination,
            receipt.remote_dir,
            receipt.elapsed.as_secs_f64()
        );
        if let Some(b) = &receipt.backup {
            println!("  backup  {}", b.display());
        }
    }
    Ok(Exit::Success)
}

fn certs(cli: &Cli, args: &CertsArgs) -> Result<Exit, Failure> {
    // The CA belongs to the project; harness.toml is optional here, it only supplies the FQDN.
    let (root, fqdn) = match Config::load(&cli.project, cli.config.as_deref()) {
        Ok(c) => (c.root.clone(), c.stack.fqdn.clone()),
        Err(_) if cli.config.is_none() => (
            std::fs::canonicalize(&cli.project).unwrap_or(cli.project.clone()),
            crate::config::StackConfig::default().fqdn,
        ),
        Err(e) => return Err(e),
    };
    let dir = crate::tls::ca_dir(&root);
    let (ca, created) = if args.rotate {
        (crate::tls::Ca::create(&dir)?, true)
    } else {
        crate::tls::Ca::load_or_create(&dir)?
    };
    let name = args.fqdn.clone().unwrap_or(fqdn);
    let leaf = if args.fqdn.is_some() {
        let leaf = ca.issue(std::slice::from_ref(&name))?;
        Some(leaf.write(&root.join(".harness").join("certs"), &name, &ca)?)
    } else {
        None
    };
    if cli.json {
        let v = serde_json::json!({
            "ca": ca.cert_path(), "key": ca.key_path(), "fingerprint_sha256": ca.fingerprint,
            "created": created, "leaf": leaf.as_ref().map(|(c, k)| serde_json::json!({"cert": c, "key": k, "name": name})),
        });
        print_json(&v);
        return Ok(Exit::Success);
    }
    let verb = if args.rotate {
        "rotated"
    } else if created {
        "created"
    } else {
        "in use"
    };
    println!("CA ({verb}): {}", ca.cert_path().display());
    println!("  sha256 fingerprint {}", ca.fingerprint);
    println!(
        "  key                {} (mode 0600)",
        ca.key_path().display()
    );
    if let Some((c, k)) = &leaf {
        println!("leaf for {name}: {}  key {}", c.display(), k.display());
    }
    println!("Trust it from the host, e.g. against a running stack's published port PORT:");
    println!(
        "  curl --cacert {} --resolve {name}:PORT:127.0.0.1 https://{name}:PORT/health",
        ca.cert_path().display()
    );
    Ok(Exit::Success)
}

fn test(cli: &Cli, args: &TestArgs, reporter: &dyn Reporter) -> Result<Exit, Failure> {
    let config = Config::load(&cli.project, cli.config.as_deref())?;
    let request = crate::run::TestRequest {
        with_mocks: args.with_mocks,
        no_tls: args.no_tls,
        skip_build: args.skip_build,
        reseed: args.reseed,
        keep: args.keep,
        selection: crate::run::SelectionRequest {
            paths: args.paths.clone(),
            keyword: args.keyword.clone(),
            shard: args.shard,
        },
        pytest_args: args.pytest_args.clone(),
    };
    let o = crate::run::test(&config, &request, reporter)?;
    if cli.json {
        print_json(&o);
    } else {
        println!("{}: {}  (run {})", o.outcome, o.verdict, o.run_id);
        if let Some(r) = &o.report {
            println!("  report   {}", r.display());
        }
        if let Some(j) = &o.junit {
            println!("  junit    {}", j.display());
        }
        println!("  parity   {}", o.parity);
        match o.ledger_run {
            Some(id) => println!("  ledger   run {id} ({}; see `harness runs`)", o.selection),
            None => println!("  ledger   not recorded (see the warning above)"),
        }
        println!(
            "  time     {:.1} s, of it pytest {:.1} s",
            o.elapsed_seconds, o.pytest_seconds
        );
        if let Some(urls) = &o.kept {
            println!("  kept (--keep); the stack is still up:");
            for u in urls {
                println!("    {:<8} {:<32} {}", u.service, u.url, u.what);
            }
            println!("    logs     {}", o.run_dir.join("logs").display());
            println!(
                "    stop with  harness --project {} down --run {}",
                config.root.display(),
                o.run_id
            );
        }
    }
    Ok(o.exit)
}

/// `backup webhosting --verify [ID]`: the restore drill, recorded in the ledger.
fn verify_backup(
    cli: &Cli,
    config: &Config,
    id: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<Exit, Failure> {
    let mut ledger = crate::gatekeeper::open_ledger(&config.root)?;
    let backup = crate::deploy::backup::find_local(config, &ledger, id)?;
    backup.check_sha256()?;
    let started_at = crate::ledger::Timestamp::now();
    let o = crate::run::drill(
        config,
        &crate::run::DrillRequest {
            tarball: backup.path.clone(),
            backup_id: backup.record.name.clone(),
        },
        reporter,
    )?;
    ledger.record_drill(&crate::ledger::DrillRecord {
        target: "webhosting".into(),
        backup_name: o.backup_id.clone(),
        backup_sha256: o.backup_sha256.clone(),
        started_at,
        finished_at: crate::ledger::Timestamp::now(),
        outcome: crate::ledger::Outcome::parse(o.outcome).unwrap_or(crate::ledger::Outcome::Infra),
        integrity: o.integrity.clone(),
        passed: o.counts.passed,
        failed: o.counts.failed + o.counts.errors,
        report_path: o.report.as_ref().map(|p| p.display().to_string()),
    })?;
    if cli.json {
        print_json(&o);
    } else {
        println!("{}: {}", o.outcome, o.verdict);
        println!("  backup     {} (sha256 {})", o.backup_id, o.backup_sha256);
        println!("  integrity  {}", o.integrity);
        if let Some(r) = &o.report {
            println!("  report     {}", r.display());
        }
        println!("  recorded in the ledger");
    }
    Ok(o.exit)
}

/// A `--dry-run` plan: each remote step with what it means and its exact shell.
fn print_plan(steps: &[crate::deploy::plan::RemoteStep]) {
    for (i, s) in steps.iter().enumerate() {
        println!("{:>2}. {:<14} {}", i + 1, s.id, s.what);
        for line in s.command().lines() {
            println!("      $ {line}");
        }
    }
    println!("nothing was changed");
}

/// `--json` output: one pretty-printed document on stdout.
fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON output serialises")
    );
}
