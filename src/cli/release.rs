//! What changes or reads production: `deploy`, `rollback`, `backup`, `status webhosting`,
//! `parity`.
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{Ctx, print_json};
use crate::error::{Exit, Failure};

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

pub(super) fn deploy(ctx: &Ctx, args: &DeployArgs) -> Result<Exit, Failure> {
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
    let config = ctx.config()?;
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
    let receipt = crate::deploy::deploy(config, &request, ctx.reporter)?;
    if ctx.json() {
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

pub(super) fn rollback(ctx: &Ctx, args: &RollbackArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
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
    let r = crate::deploy::rollback::rollback(config, &request, ctx.reporter, &ask)?;
    if ctx.json() {
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

pub(super) fn backup(ctx: &Ctx, args: &BackupArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    if let Some(id) = &args.verify {
        return verify_backup(ctx, (!id.is_empty()).then_some(id.as_str()));
    }
    let request = crate::deploy::backup::BackupRequest {
        break_lock: args.break_lock,
    };
    let r = crate::deploy::backup::backup(config, &request, ctx.reporter)?;
    if ctx.json() {
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

/// `harness status webhosting`: what production runs, its releases, backups and lock.
pub(super) fn status_webhosting(ctx: &Ctx) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let s = crate::deploy::status::status(config)?;
    if ctx.json() {
        print_json(&s);
    } else {
        print!("{}", crate::deploy::status::text(&s));
    }
    Ok(Exit::Success)
}

pub(super) fn parity(ctx: &Ctx, args: &ParityArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let clean = if args.remote {
        crate::parity::remote::server(config)?;
        let package = crate::deploy::status::deployed_package(config)?;
        let outcome = crate::parity::remote::run(config, &package, ctx.reporter)?;
        if ctx.json() {
            print_json(&outcome);
        } else {
            print!("{}", crate::parity::remote::table(&outcome));
        }
        outcome.report.is_clean()
    } else {
        let outcome = crate::parity::run(config, ctx.reporter)?;
        if ctx.json() {
            print_json(&outcome);
        } else {
            print!("{}", crate::parity::table(&outcome));
        }
        outcome.clean
    };
    Ok(if clean { Exit::Success } else { Exit::Failed })
}

/// `backup webhosting --verify [ID]`: the restore drill, recorded in the ledger.
fn verify_backup(ctx: &Ctx, id: Option<&str>) -> Result<Exit, Failure> {
    let o = crate::deploy::backup::verify(ctx.config()?, id, ctx.reporter)?;
    if ctx.json() {
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
fn print_plan(steps: &[crate::remote::step::RemoteStep]) {
    for (i, s) in steps.iter().enumerate() {
        println!("{:>2}. {:<14} {}", i + 1, s.id, s.what);
        for line in s.command().lines() {
            println!("      $ {line}");
        }
    }
    println!("nothing was changed");
}
