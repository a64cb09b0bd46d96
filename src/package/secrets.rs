//! Generated secrets and the state file `deployment_state_<target>.json`.
//!
//! The state file is the only place plaintext secrets live. It is written atomically with mode
//! 0600, keeps every key it does not manage (tests write a changed admin password back into it),
//! and is never packaged.
use std::collections::BTreeMap;
#[cfg(test)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::config::{Config, SecretKind};
use crate::error::{Exit, Failure};
use crate::model::target::Target;

pub const ADMIN_PASSWORD: &str = "admin_password";

#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub alias: String,
    pub token: String,
    pub description: String,
    pub is_primary: bool,
}

/// The secrets one build uses, whether reused or new.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub values: BTreeMap<String, String>,
    pub clients: Vec<Client>,
}

impl Secrets {
    /// Looks up a placeholder name: a secret, `client_token.<id>` or `client_alias.<id>`.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(id) = name.strip_prefix("client_token.") {
            return self
                .clients
                .iter()
                .find(|c| c.client_id == id)
                .map(|c| c.token.as_str());
        }
        if let Some(id) = name.strip_prefix("client_alias.") {
            return self
                .clients
                .iter()
                .find(|c| c.client_id == id)
                .map(|c| c.alias.as_str());
        }
        self.values.get(name).map(String::as_str)
    }
}

pub fn state_file_path(root: &Path, target: Target) -> PathBuf {
    root.join(format!("deployment_state_{target}.json"))
}

/// Serialises every read-modify-write of a target's state file: a build (which reads it, runs
/// the seed, and writes it back) and a deploy or rollback finishing meanwhile would otherwise
/// each write their own stale copy, and the last one would drop the other's keys, a generated
/// password among them. The lock lives under .harness/, never beside the state file, where a
/// build could package it.
pub fn lock_state(root: &Path, target: Target) -> Result<crate::fsutil::FileLock, Failure> {
    crate::fsutil::lock_exclusive(
        &root
            .join(".harness")
            .join("locks")
            .join(format!("deployment_state_{target}.lock")),
    )
}

/// Sets one top-level key of a target's state file under [`lock_state`], keeping every other key
/// and mode 0600.
pub fn set_state_key(root: &Path, target: Target, key: &str, value: Value) -> Result<(), Failure> {
    let _lock = lock_state(root, target)?;
    let path = state_file_path(root, target);
    let mut state = load_state(&path)?.unwrap_or_default();
    state.insert(key.into(), value);
    let bytes = serde_json::to_vec_pretty(&Value::Object(state)).expect("state serialises");
    crate::fsutil::write_private(&path, &bytes)
}

/// Reads the state file if it exists. A file that is not a JSON object is refused rather than
/// overwritten: it may hold the only copy of a production password.
pub fn load_state(path: &Path) -> Result<Option<Map<String, Value>>, Failure> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::new(
                Exit::Environment,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) | Err(_) => Err(Failure::new(
            Exit::BadInput,
            format!("{} is not a JSON object; harness will not overwrite it", path.display()),
        )
        .hint("fix the file, or move it aside to generate new secrets (it may hold the only copy of a password)")),
    }
}

/// Reuses the secrets in `state` unless `rotate`, and generates the missing ones.
pub fn resolve(config: &Config, state: Option<&Map<String, Value>>, rotate: bool) -> Secrets {
    let state = if rotate { None } else { state };
    let mut values = BTreeMap::new();
    for (name, kind) in &config.package.secrets {
        let existing = state.and_then(|s| {
            if name == ADMIN_PASSWORD {
                s.get("admin")?.get("password")?.as_str()
            } else {
                s.get("secrets")?.get(name)?.as_str()
            }
        });
        let value = match existing {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => generate(*kind),
        };
        values.insert(name.clone(), value);
    }
    let old_clients: Vec<&Value> = state
        .and_then(|s| s.get("clients")?.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let clients = config
        .package
        .clients
        .iter()
        .map(|c| {
            let reused = old_clients.iter().find_map(|o| {
                if o.get("client_id")?.as_str()? != c.client_id {
                    return None;
                }
                let token = o.get("secret_key")?.as_str()?;
                let alias = parse_token(token)?;
                Some((alias.to_string(), token.to_string()))
            });
            let (alias, token) = reused.unwrap_or_else(|| {
                let alias = random_from(ALNUM, 16);
                let token = format!("naf_{alias}_{}", random_from(ALNUM, 64));
                (alias, token)
            });
            Client {
                client_id: c.client_id.clone(),
                alias,
                token,
                description: c.description.clone(),
                is_primary: c.is_primary,
            }
        })
        .collect();
    Secrets { values, clients }
}

/// `naf_<16 alias>_<64 alnum>` → alias.
fn parse_token(token: &str) -> Option<&str> {
    let rest = token.strip_prefix("naf_")?;
    let (alias, secret) = rest.split_once('_')?;
    let ok = alias.len() == 16
        && secret.len() == 64
        && (alias.chars().chain(secret.chars())).all(|c| c.is_ascii_alphanumeric());
    ok.then_some(alias)
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// No 0/O, 1/l/I: humans type this one.
const HUMAN: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

fn generate(kind: SecretKind) -> String {
    match kind {
        SecretKind::Password => random_from(HUMAN, 20),
        SecretKind::Hex => {
            let mut b = [0u8; 32];
            rand::fill(&mut b);
            hex::encode(b)
        }
    }
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut buf = [0u8; 64];
        rand::fill(&mut buf);
        for b in buf {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// Facts about the build that the state file records (no secrets).
pub struct BuildFacts {
    pub target: Target,
    pub deploy_dir: String,
    pub built_at: String,
    pub git_commit: String,
    pub git_branch: String,
    pub now: String,
}

/// The state file keys every build rewrites (`write_state`: `build`, `last_updated_at`,
/// `updated_by`) or every deploy (`deployment`): bookkeeping, not what a seed left (the seed
/// cache compares the rest).
pub const BOOKKEEPING_KEYS: [&str; 4] = ["build", "last_updated_at", "updated_by", "deployment"];

/// Merges the secrets into `state` (keeping unknown keys) and writes it with mode 0600.
pub fn write_state(
    path: &Path,
    state: Option<Map<String, Value>>,
    secrets: &Secrets,
    facts: &BuildFacts,
) -> Result<(), Failure> {
    let mut s = state.unwrap_or_default();
    s.insert("target".into(), json!(facts.target));
    s.insert("deploy_dir".into(), json!(facts.deploy_dir));
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let build = s.entry("build").or_insert_with(|| json!({}));
    if let Value::Object(b) = build {
        b.insert("built_at".into(), json!(facts.built_at));
        b.insert("git_commit".into(), json!(facts.git_commit));
        b.insert("git_branch".into(), json!(facts.git_branch));
        b.insert("builder".into(), json!(user));
        b.insert("source".into(), json!("harness build"));
    }
    if let Some(pw) = secrets.values.get(ADMIN_PASSWORD) {
        let admin = s.entry("admin").or_insert_with(|| json!({}));
        if let Value::Object(a) = admin {
            let changed = a.get("password").and_then(Value::as_str) != Some(pw.as_str());
            a.entry("username").or_insert(json!("admin"));
            a.insert("password".into(), json!(pw));
            if changed || !a.contains_key("password_changed_at") {
                a.insert("password_changed_at".into(), Value::Null);
            }
        }
    }
    if !secrets.clients.is_empty() {
        let mut list: Vec<Value> = s
            .get("clients")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|o| {
                        let id = o.get("client_id").and_then(Value::as_str);
                        !secrets
                            .clients
                            .iter()
                            .any(|c| Some(c.client_id.as_str()) == id)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for c in &secrets.clients {
            list.push(json!({"client_id": c.client_id, "secret_key": c.token, "description": c.description, "is_primary": c.is_primary}));
        }
        s.insert("clients".into(), Value::Array(list));
    }
    let others: Map<String, Value> = secrets
        .values
        .iter()
        .filter(|(k, _)| *k != ADMIN_PASSWORD)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if !others.is_empty() {
        let entry = s.entry("secrets").or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.extend(others);
        }
    }
    s.insert("last_updated_at".into(), json!(facts.now));
    s.insert(
        "updated_by".into(),
        json!(format!("harness build ({user})")),
    );
    write_private(path, &super::archive::pretty_json(&Value::Object(s)))
}

use crate::fsutil::write_private;

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 17: a deploy's write waits for a build that read the state before it, and so
    /// lands on top of the build's write instead of under it.
    #[test]
    fn a_state_write_waits_for_a_read_modify_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let path = state_file_path(&root, Target::Webhosting);
        std::fs::write(&path, r#"{"admin": {"password": "old"}}"#).unwrap();

        let build = lock_state(&root, Target::Webhosting).unwrap();
        let mut state = load_state(&path).unwrap().unwrap();
        let deploy = {
            let root = root.clone();
            std::thread::spawn(move || {
                set_state_key(
                    &root,
                    Target::Webhosting,
                    "deployment",
                    json!({"build_id": "b2"}),
                )
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(
            !deploy.is_finished(),
            "the deploy waits for the build's lock"
        );
        state.insert("admin".into(), json!({"password": "new"}));
        write_private(&path, &serde_json::to_vec(&state).unwrap()).unwrap();
        drop(build);
        deploy.join().unwrap().unwrap();

        let after = load_state(&path).unwrap().unwrap();
        assert_eq!(after["admin"]["password"], "new", "{after:?}");
        assert_eq!(after["deployment"]["build_id"], "b2", "{after:?}");
        use std::os::unix::fs::PermissionsExt;
        let lock = root.join(".harness/locks/deployment_state_webhosting.lock");
        assert_eq!(
            std::fs::metadata(lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    fn config() -> Config {
        let src = r#"
[package]
sources = [{ from = "src", to = "src" }]
entry_point = { from = "p.py", to = "passenger_wsgi.py" }
[package.secrets]
admin_password = "password"
secret_key = "hex"
[[package.clients]]
client_id = "primary"
is_primary = true
"#;
        Config::parse("/p".into(), "/p/harness.toml".into(), src.into()).unwrap()
    }

    #[test]
    fn generates_then_reuses_then_rotates() {
        let c = config();
        let first = resolve(&c, None, false);
        assert_eq!(first.values[ADMIN_PASSWORD].len(), 20);
        assert_eq!(first.values["secret_key"].len(), 64);
        let token = first.lookup("client_token.primary").unwrap();
        assert!(parse_token(token).is_some(), "{token}");
        assert_eq!(first.lookup("client_alias.primary"), parse_token(token));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment_state_local.json");
        let facts = BuildFacts {
            target: Target::Local,
            deploy_dir: "d".into(),
            built_at: "t".into(),
            git_commit: "c".into(),
            git_branch: "b".into(),
            now: "n".into(),
        };
        let mut existing = Map::new();
        existing.insert("custom".into(), json!({"keep": true}));
        write_state(&path, Some(existing), &first, &facts).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let state = load_state(&path).unwrap().unwrap();
        assert_eq!(state["custom"], json!({"keep": true}));
        let again = resolve(&c, Some(&state), false);
        assert_eq!(again.values, first.values);
        assert_eq!(again.clients[0].token, first.clients[0].token);

        let rotated = resolve(&c, Some(&state), true);
        assert_ne!(rotated.values[ADMIN_PASSWORD], first.values[ADMIN_PASSWORD]);
    }

    #[test]
    fn broken_state_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load_state(&path).unwrap_err().exit, Exit::BadInput);
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
