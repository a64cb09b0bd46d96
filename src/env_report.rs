//! `harness env`: the environment a process of a run would get, each key with where it came from
//! (an env file's line, harness's built-ins, a compose override, the inline `env`), secret-looking
//! values masked. It reads what the run reads, through the same functions, without Docker.
use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config::{Config, EnvScope};
use crate::envfile::{self, Origin, Var};
use crate::error::Failure;
use crate::model::target::Target;

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The app of `harness up` / `harness test` (`[targets.local]`).
    StackApp { with_mocks: bool, no_tls: bool },
    /// The app of the deploy's boot check (`[targets.webhosting]`).
    BootCheck,
    /// The test job of `harness test` (`[test]`).
    TestJob { with_mocks: bool, no_tls: bool },
}

impl Subject {
    fn scope(self) -> EnvScope {
        match self {
            Subject::StackApp { .. } => EnvScope::Target(Target::Local),
            Subject::BootCheck => EnvScope::Target(Target::Webhosting),
            Subject::TestJob { .. } => EnvScope::Test,
        }
    }

    fn describe(self) -> String {
        let flags = |with_mocks: bool, no_tls: bool| {
            let mut f = String::new();
            if with_mocks {
                f.push_str(" --with-mocks");
            }
            if no_tls {
                f.push_str(" --no-tls");
            }
            f
        };
        match self {
            Subject::StackApp { with_mocks, no_tls } => format!(
                "the app of `harness up{0}` and `harness test{0}` ([targets.local])",
                flags(with_mocks, no_tls)
            ),
            Subject::BootCheck => {
                "the app in the deploy's boot check ([targets.webhosting])".to_string()
            }
            Subject::TestJob { with_mocks, no_tls } => format!(
                "the test job of `harness test{}` ([test])",
                flags(with_mocks, no_tls)
            ),
        }
    }
}

/// The environment, explained.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub subject: String,
    pub precedence: &'static str,
    /// Every `env_file` entry: read, or absent and optional.
    pub files: Vec<FileStatus>,
    pub vars: Vec<ShownVar>,
}

#[derive(Debug, serde::Serialize)]
pub struct FileStatus {
    pub path: String,
    pub read: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct ShownVar {
    pub key: String,
    /// Masked when the key looks secret (`envfile::shown`).
    pub value: String,
    pub origin: String,
}

pub fn report(config: &Config, subject: Subject) -> Result<Report, Failure> {
    let scope = subject.scope();
    let layers = match scope {
        EnvScope::Target(t) => config.app_env(t)?,
        EnvScope::Test => config.env_layers(scope)?,
    };
    let builtins: Vec<(String, String, Origin)> = match subject {
        Subject::BootCheck => crate::deploy::boot::builtin_env()
            .into_iter()
            .map(|(k, v)| (k, v, Origin::Builtin))
            .collect(),
        Subject::StackApp { with_mocks, no_tls } => {
            crate::stack::service_env(config, &request(config, with_mocks, no_tls, false), "app")?
        }
        Subject::TestJob { with_mocks, no_tls } => {
            let mut env = crate::stack::service_env(
                config,
                &request(config, with_mocks, no_tls, true),
                crate::run::job::SERVICE,
            )?;
            let server = config.test.playwright_server_env();
            env.extend(
                crate::run::job::builtin_env(crate::envfile::PER_RUN.into(), server.as_deref())
                    .into_iter()
                    .map(|(k, v)| (k, v, Origin::Builtin)),
            );
            env
        }
    };
    let files = layers
        .files()
        .iter()
        .map(|(path, read)| FileStatus {
            path: path.clone(),
            read: *read,
        })
        .collect();
    Ok(Report {
        subject: subject.describe(),
        precedence: envfile::PRECEDENCE,
        files,
        vars: shown(layers.explain(&builtins)),
    })
}

fn request(
    config: &Config,
    with_mocks: bool,
    no_tls: bool,
    test_job: bool,
) -> crate::stack::LaunchRequest {
    crate::stack::LaunchRequest {
        with_mocks,
        no_tls,
        keep: false,
        test_job,
        playwright_server: config.test.playwright_server_env().is_some(),
        vars: if test_job {
            let mut vars = crate::run::job_vars(config, no_tls);
            vars.insert(
                "HARNESS_MAILPIT_PASSWORD".into(),
                crate::envfile::PER_RUN.into(),
            );
            vars
        } else {
            BTreeMap::new()
        },
    }
}

fn shown(vars: BTreeMap<String, Var>) -> Vec<ShownVar> {
    vars.into_iter()
        .map(|(key, var)| ShownVar {
            value: envfile::shown(&key, &var.value),
            origin: match var.over {
                Some(under) => format!("{} (over {under})", var.origin),
                None => var.origin.to_string(),
            },
            key,
        })
        .collect()
}

/// The report as text: a header, then `origin  KEY=value` lines sorted by key.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}", r.subject);
    let _ = writeln!(out, "# precedence: {}", r.precedence);
    if r.files.is_empty() {
        let _ = writeln!(out, "# env files: none");
    } else {
        let list: Vec<String> = r
            .files
            .iter()
            .map(|f| {
                if f.read {
                    f.path.clone()
                } else {
                    format!("{} (absent, optional)", f.path)
                }
            })
            .collect();
        let _ = writeln!(out, "# env files: {}", list.join(", "));
    }
    let width = r.vars.iter().map(|v| v.origin.len()).max().unwrap_or(0);
    for v in &r.vars {
        let value = v.value.replace('\n', "\\n").replace('\r', "\\r");
        let _ = writeln!(out, "{:width$}  {}={value}", v.origin, v.key);
    }
    out
}
