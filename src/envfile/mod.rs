//! Env files (`env_file` in `[targets.*]` and `[test]`): the dotenv files an app already keeps,
//! read in order and layered with harness's built-ins and the inline `env`, each key knowing
//! where it came from.
//!
//! Precedence, lowest first ([`PRECEDENCE`]): the files in the order given, a later one
//! overriding an earlier one; then harness's built-ins (the stack's own wiring: the mocks'
//! addresses, the CA bundle, the suite's UI_BASE_URL); then the inline `env`. Built-ins beat the
//! files because the files were written for the app's own machines: a `MAIL_HOST` in
//! `.env.defaults` must not send the stack's mail out, and a suite's `.env` naming its developer's
//! server must not aim the job at it. The inline `env` is written for harness, so it wins.
mod parse;

use std::collections::BTreeMap;
use std::fmt;

pub use parse::{Entry, ParseError, expand, parse, resolve};

/// The rule, as `--help` and docs/config.md print it.
pub const PRECEDENCE: &str = "env files in the order given (a later file overrides an earlier \
     one) < harness's built-ins < the inline `env`";

/// What `harness env` shows for a value that exists only once a run does (its folder, a
/// per-run password).
pub const PER_RUN: &str = "<run>";

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of an env file, named as harness.toml names it.
    File { file: String, line: usize },
    /// harness's own wiring (the built-in compose files, the job runner, the boot check).
    Builtin,
    /// A project compose override (`[stack] compose_overrides`).
    Override(String),
    /// The inline `env` table of harness.toml.
    Inline,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file}:{line}"),
            Origin::Builtin => f.write_str("built-in"),
            Origin::Override(file) => write!(f, "{file} (compose override)"),
            Origin::Inline => f.write_str("inline env"),
        }
    }
}

/// One variable and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub value: String,
    pub origin: Origin,
    /// The layer it hides, when a lower one set it too: the answer to "my .env says otherwise".
    pub over: Option<Origin>,
}

/// The env files of one scope, read and merged, and its inline `env`.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    files: BTreeMap<String, Var>,
    inline: BTreeMap<String, String>,
    /// Every file harness.toml names, in order, and whether it was read (an optional file that
    /// is absent was not).
    listed: Vec<(String, bool)>,
}

impl Layers {
    pub fn new(inline: BTreeMap<String, String>) -> Self {
        Self {
            inline,
            ..Self::default()
        }
    }

    /// Reads one more file, `shown` being its name for messages and origins. `${VAR}` sees the
    /// keys of the files read before it, then `process` (harness's own environment).
    pub fn add_file(
        &mut self,
        shown: &str,
        text: &str,
        process: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ParseError> {
        let known: Vec<(String, String)> = self
            .files
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect();
        for (entry, value) in resolve(text, &known, process)? {
            let origin = Origin::File {
                file: shown.to_string(),
                line: entry.line,
            };
            let over = self.files.get(&entry.key).map(|v| v.origin.clone());
            self.files.insert(
                entry.key,
                Var {
                    value,
                    origin,
                    over,
                },
            );
        }
        self.listed.push((shown.to_string(), true));
        Ok(())
    }

    /// Notes an optional file that does not exist, so `harness env` can say it was looked for.
    pub fn absent(&mut self, shown: &str) {
        self.listed.push((shown.to_string(), false));
    }

    /// Every file harness.toml names, in order, with whether it was read.
    pub fn files(&self) -> &[(String, bool)] {
        &self.listed
    }

    /// The files read, in order, as harness.toml names them.
    pub fn files_read(&self) -> Vec<&str> {
        self.listed
            .iter()
            .filter(|(_, read)| *read)
            .map(|(f, _)| f.as_str())
            .collect()
    }

    /// The keys of the inline `env` table.
    pub fn inline_names(&self) -> Vec<String> {
        self.inline.keys().cloned().collect()
    }

    /// Every variable with its origin: the files, then `builtins` over them, then the inline env.
    pub fn explain(&self, builtins: &[(String, String, Origin)]) -> BTreeMap<String, Var> {
        let mut out = self.files.clone();
        let mut set = |k: &String, value: &String, origin: Origin| {
            let over = out.get(k).map(|v| v.origin.clone());
            out.insert(
                k.clone(),
                Var {
                    value: value.clone(),
                    origin,
                    over,
                },
            );
        };
        for (k, v, origin) in builtins {
            set(k, v, origin.clone());
        }
        for (k, v) in &self.inline {
            set(k, v, Origin::Inline);
        }
        out
    }

    /// The environment a process gets over `builtins`: [`Layers::explain`]'s values, so the
    /// precedence lives in one place.
    pub fn over(&self, builtins: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let builtins: Vec<(String, String, Origin)> = builtins
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), Origin::Builtin))
            .collect();
        self.explain(&builtins)
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect()
    }

    /// The files and the inline env without built-ins: what the seed command gets besides its
    /// HARNESS_* variables, and what the ledger's digest covers.
    pub fn merged(&self) -> BTreeMap<String, String> {
        self.over(&BTreeMap::new())
    }

    /// The first value with a line break, and where it came from: Apache's `SetEnv` cannot hand
    /// one to the app, so an app's environment must not have any.
    pub fn multi_line(&self) -> Option<(String, Origin)> {
        self.explain(&[])
            .into_iter()
            .find(|(_, v)| v.value.contains(['\n', '\r']))
            .map(|(k, v)| (k, v.origin))
    }
}

/// Whether a variable's name says it holds a secret: its value is masked in `harness env`. Read
/// by `_`-separated words, so PASSENGER_APP_ROOT is not a password but SHOP_APIPASSWORD is.
pub fn secret_looking(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    k.split(['_', '-', '.']).any(|word| {
        [
            "SECRET",
            "TOKEN",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
            "PRIVATE",
            "SALT",
        ]
        .iter()
        .any(|s| word.contains(s))
            || ["PASS", "PWD", "AUTH", "SIGNATURE", "DSN", "LICENSE"].contains(&word)
            || word.ends_with("KEY")
    })
}

/// `value` as `harness env` shows it: masked when the key looks secret, and with the password of
/// a `scheme://user:password@host` URL masked under any key (DATABASE_URL and friends).
pub fn shown(key: &str, value: &str) -> String {
    if secret_looking(key) && !value.is_empty() && value != PER_RUN {
        return format!("******** ({} characters)", value.chars().count());
    }
    if let Some(scheme_end) = value.find("://") {
        let rest = &value[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            let end = scheme_end + 3 + at;
            return format!("{}********{}", &value[..start], &value[end..]);
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(files: &[(&str, &str)], inline: &[(&str, &str)]) -> Layers {
        let mut l = Layers::new(
            inline
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        for (name, text) in files {
            l.add_file(name, text, &|_| None).unwrap();
        }
        l
    }

    #[test]
    fn later_files_then_builtins_then_inline_win() {
        let l = layers(
            &[
                (".env.defaults", "A=defaults\nB=defaults\nC=defaults\nD=d\n"),
                (".env", "B=private\nC=private\n"),
            ],
            &[("C", "inline")],
        );
        let builtins = BTreeMap::from([
            ("C".to_string(), "builtin".to_string()),
            ("D".to_string(), "builtin".to_string()),
        ]);
        let env = l.over(&builtins);
        assert_eq!(env["A"], "defaults");
        assert_eq!(env["B"], "private");
        assert_eq!(env["C"], "inline");
        assert_eq!(env["D"], "builtin");
        assert_eq!(l.files_read(), [".env.defaults", ".env"]);
        let why = l.explain(&[("D".into(), "builtin".into(), Origin::Builtin)]);
        assert_eq!(why["B"].origin.to_string(), ".env:1");
        assert_eq!(why["A"].origin.to_string(), ".env.defaults:1");
        assert_eq!(why["C"].origin, Origin::Inline);
        assert_eq!(why["C"].over.as_ref().unwrap().to_string(), ".env:2");
        assert_eq!(why["A"].over, None);
        assert_eq!(why["D"].origin, Origin::Builtin);
    }

    #[test]
    fn a_later_file_expands_keys_of_an_earlier_one_then_the_process_environment() {
        let mut l = Layers::default();
        l.add_file("a", "HOST=db.local\n", &|_| None).unwrap();
        l.add_file(
            "b",
            "URL=postgres://${HOST}/${NAME:-app}\nHOME_DIR=${HOME}\n",
            &|k| (k == "HOME").then(|| "/home/u".to_string()),
        )
        .unwrap();
        let env = l.merged();
        assert_eq!(env["URL"], "postgres://db.local/app");
        assert_eq!(env["HOME_DIR"], "/home/u");
    }

    #[test]
    fn a_line_break_in_a_value_is_found_with_its_origin() {
        let l = layers(&[("f", "A=1\nB=\"x\ny\"\n")], &[]);
        assert_eq!(
            l.multi_line(),
            Some((
                "B".into(),
                Origin::File {
                    file: "f".into(),
                    line: 2
                }
            ))
        );
        assert_eq!(layers(&[("f", "A=1\n")], &[]).multi_line(), None);
    }

    #[test]
    fn secret_looking_values_and_url_passwords_are_masked() {
        assert_eq!(shown("SECRET_KEY", "abc"), "******** (3 characters)");
        assert_eq!(shown("GEOIP_LICENSE_KEY", ""), "");
        assert_eq!(shown("DEBUG", "1"), "1");
        assert_eq!(shown("PASSENGER_APP_ROOT", "/srv/app"), "/srv/app");
        for key in [
            "SHOP_NETCUP_APIKEY",
            "DB_PASS",
            "x_api_token",
            "SENTRY_DSN",
            "SHOP_APIPASSWORD",
        ] {
            assert!(secret_looking(key), "{key}");
        }
        for key in ["KEYBOARD", "PASSENGER_X", "AUTHOR", "DEBUG"] {
            assert!(!secret_looking(key), "{key}");
        }
        assert_eq!(
            shown("DATABASE_URL", "postgres://app:hunter2@db:5432/x?a=b@c"),
            "postgres://app:********@db:5432/x?a=b@c"
        );
        assert_eq!(
            shown("SITE", "https://user@example.com/"),
            "https://user@example.com/"
        );
    }
}
