//! The CI pipeline generator: `ci github`.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Ctx, print_json};
use crate::error::{Exit, Failure};

#[derive(Debug, Args)]
pub struct CiArgs {
    #[command(subcommand)]
    pub provider: CiProvider,
}

#[derive(Debug, Subcommand)]
pub enum CiProvider {
    /// Write (or --check) the GitHub Actions workflow and its zizmor policy.
    ///
    /// Reads [ci] in harness.toml: harness = { git, rev } (where the runners `cargo install`
    /// harness from, required), shards, branch, runs_on, deploy. The same config always gives
    /// the same bytes; commit both files and let CI run `harness ci github --check`.
    /// Prints what is still to set up: the signing key's secret and [gate] trusted_keys, and,
    /// with deploy, the `webhosting` environment and its secrets (docs/scale.md).
    Github {
        /// Jobs in the test matrix (default: [ci] shards, else 1).
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        /// Write the workflow here instead of .github/workflows/harness.yml at the repository's
        /// top; the zizmor policy goes beside it.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write nothing; exit 1 with a diff when the files are not what this config generates.
        #[arg(long)]
        check: bool,
    },
}

pub(super) fn ci(ctx: &Ctx, args: &CiArgs) -> Result<Exit, Failure> {
    let CiProvider::Github {
        shards,
        output,
        check,
    } = &args.provider;
    let config = ctx.config()?;
    let spec = crate::ci::Spec::of(config, *shards)?;
    let outputs = crate::ci::Outputs::new(config, output.as_deref());
    if *check {
        let stale = crate::ci::check(&spec, &outputs);
        if ctx.json() {
            print_json(&serde_json::json!({ "current": stale.is_empty(), "stale": stale }));
        } else if stale.is_empty() {
            println!(
                "{} and {} are what harness.toml generates",
                outputs.workflow.display(),
                outputs.policy.display()
            );
        } else {
            for s in &stale {
                print!("{}", s.diff);
            }
            eprintln!(
                "error: {} file(s) differ from what harness.toml generates{}\nhint: run `harness ci github{}` and \
                 commit the result; to keep a shard count, set [ci] shards rather than passing --shards",
                stale.len(),
                shards
                    .map(|n| format!(" with --shards {n}"))
                    .unwrap_or_default(),
                shards.map(|n| format!(" --shards {n}")).unwrap_or_default()
            );
        }
        return Ok(if stale.is_empty() {
            Exit::Success
        } else {
            Exit::Failed
        });
    }
    let generated = crate::ci::generate(config, &spec, &outputs)?;
    if ctx.json() {
        print_json(&generated);
    } else {
        let verb = if generated.changed {
            "wrote"
        } else {
            "unchanged"
        };
        println!(
            "{verb} {} ({} shard{}{}) and {}",
            generated.workflow.display(),
            generated.shards,
            if generated.shards == 1 { "" } else { "s" },
            if generated.deploy {
                ", gate, deploy"
            } else {
                ", gate"
            },
            generated.policy.display()
        );
        for t in &generated.todo {
            println!("  to do: {t}");
        }
    }
    Ok(Exit::Success)
}
