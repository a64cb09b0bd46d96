//! The local stack: `up`, `test`, `down`, `status` (local), `logs`, `images`.
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, DeployTarget, print_json};
use crate::error::{Exit, Failure};

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
    /// Stay in the foreground and push edits into the running app: files of [package] sources,
    /// entry_point and extra_files that change are copied into the app's folder (only those;
    /// vendor/ and the database stay), and any change but static/ files restarts the app
    /// through tmp/restart.txt. This run's Passenger checks that file on every request (stat
    /// throttle 0; `harness test` and production keep 10 s). A change that breaks the app's
    /// import prints its traceback here; the next good save recovers. harness.toml, the env files,
    /// requirements and the SQL files are not pushed: watch says to restart `up`. Ctrl-C stops
    /// watching and removes the run.
    #[arg(long)]
    pub watch: bool,
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
    /// Run the selection on N stacks at once on this engine, each with its own app copy,
    /// database and mocks; the files are dealt over them as shards are. `auto` is half the
    /// cores (at least 1). One merged junit.xml, report and ledger record; output lines carry
    /// the worker (`[w2]`). A share's run may be sharded too (`--shard 1/2 --workers 2`).
    #[arg(long, value_name = "N|auto", default_value = "1", value_parser = parse_workers, conflicts_with = "keep")]
    pub workers: u32,
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

/// `harness up`: a stack that stays up, and its addresses.
pub(super) fn up(ctx: &Ctx, args: &UpArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let request = crate::stack::UpRequest {
        with_mocks: args.with_mocks,
        no_tls: args.no_tls,
        skip_build: args.skip_build,
        reseed: args.reseed,
        keep: true,
        watch: args.watch,
    };
    let up = crate::stack::up(config, &request, ctx.reporter)?;
    if ctx.json() {
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
        if args.watch {
            println!("  stop with    Ctrl-C (removes the run)");
        } else {
            println!("  stop with    harness down --run {}", up.run_id);
        }
    }
    if args.watch {
        crate::watch::watch(config, &up, ctx.reporter)?;
    }
    Ok(Exit::Success)
}

/// `--workers N|auto`: auto is half the cores, at least one.
fn parse_workers(text: &str) -> Result<u32, String> {
    if text == "auto" {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        return Ok((cores / 2).max(1));
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=crate::run::MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a worker count: give 1 to {} or `auto`",
            crate::run::MAX_WORKERS
        )),
    }
}

pub(super) fn test(ctx: &Ctx, args: &TestArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
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
        workers: args.workers,
    };
    let o = crate::run::test(config, &request, ctx.reporter)?;
    if ctx.json() {
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

/// `harness down`: removes this project's kept runs.
pub(super) fn down(ctx: &Ctx, args: &DownArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let request = crate::stack::DownRequest {
        run: args.run.clone(),
        all: args.all,
    };
    let ids = crate::stack::down(config, &request, ctx.reporter)?;
    if ctx.json() {
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

/// `harness status` (local): the runs that are up.
pub(super) fn status(ctx: &Ctx, args: &StatusArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let request = crate::stack::StatusRequest {
        run: args.run.clone(),
    };
    let runs = crate::stack::status(config, &request)?;
    if ctx.json() {
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
                    .map(|(c, h)| format!("{}->{c}", crate::docker::ports().at(*h)))
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

/// `harness logs`: one service's log, or all of them.
pub(super) fn logs(ctx: &Ctx, args: &LogsArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let request = crate::stack::LogsRequest {
        service: args.service.clone(),
        run: args.run.clone(),
        follow: args.follow,
    };
    crate::stack::logs(config, &request, &mut std::io::stdout().lock())?;
    Ok(Exit::Success)
}

/// `harness images`: list, resolve or bake the stack's images.
pub(super) fn images(ctx: &Ctx, args: &ImagesArgs) -> Result<Exit, Failure> {
    let report = crate::images::run(
        &crate::images::Request {
            list: args.list,
            bake: args.bake,
            offline: args.offline,
            order: args.order.clone(),
            recipes: args.recipes.clone(),
            names: args.names.clone(),
        },
        ctx.reporter,
    )?;
    if ctx.json() {
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
