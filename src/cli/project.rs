//! The project's own files: `init`, `env`, `build`, `certs`.
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, print_json};
use crate::error::{Exit, Failure};

use super::Target;

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

impl BuildArgs {
    fn target(&self) -> Target {
        if self.local {
            Target::Local
        } else {
            self.target.unwrap_or(Target::Webhosting)
        }
    }
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

/// `harness init`: writes (or prints) a harness.toml and lists what is left to decide.
pub(super) fn init(ctx: &Ctx, args: &InitArgs) -> Result<Exit, Failure> {
    let root = ctx.root();
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

/// `harness env`: the merged environment of one process of a run.
pub(super) fn env(ctx: &Ctx, args: &EnvArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
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
    let report = crate::env_report::report(config, subject)?;
    if ctx.json() {
        print_json(&report);
    } else {
        print!("{}", crate::env_report::text(&report));
    }
    Ok(Exit::Success)
}

/// `harness build`: the package, recorded in the ledger.
pub(super) fn build(ctx: &Ctx, args: &BuildArgs) -> Result<Exit, Failure> {
    let config = ctx.config()?;
    let request = crate::package::BuildRequest {
        target: args.target().model(),
        seed_demo: args.seed_demo,
        rotate_secrets: args.rotate_secrets,
        reseed: args.reseed,
        output: args.output.clone(),
    };
    let built = crate::gatekeeper::build(config, &request, ctx.reporter)?;
    if ctx.json() {
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

pub(super) fn certs(ctx: &Ctx, args: &CertsArgs) -> Result<Exit, Failure> {
    // The CA belongs to the project; harness.toml is optional here, it only supplies the FQDN.
    let cli = ctx.cli;
    let (root, fqdn) = match ctx.config() {
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
    if ctx.json() {
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
