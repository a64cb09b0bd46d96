//! The seeded database: SQL files with secret placeholders, or the app's own seed command; and the
//! schema fingerprint.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rusqlite::Connection;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::secrets::Secrets;
use crate::error::{Exit, Failure};
use crate::model::target::Target;

/// Iterations for `werkzeug` hashes. Werkzeug reads the count from the hash itself, so a lower
/// count than its own default still verifies; this one keeps a build under a second.
const WERKZEUG_ITERATIONS: u32 = 100_000;

/// Expands `{{NAME}}`, `{{NAME|sha256}}`, `{{NAME|json}}` and `{{NAME|werkzeug}}` into complete SQL
/// string literals, so a secret can never break out of its quotes.
pub fn expand(
    sql: &str,
    file: &Path,
    secrets: &Secrets,
    target: Target,
) -> Result<String, Failure> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let line = sql[..sql.len() - rest.len() + start].matches('\n').count() + 1;
        let end = after.find("}}").ok_or_else(|| {
            Failure::new(
                Exit::BadInput,
                format!("{}:{line}: unclosed `{{{{` placeholder", file.display()),
            )
            .hint("close it with `}}`")
        })?;
        let inner = after[..end].trim();
        let (name, filter) = match inner.split_once('|') {
            Some((n, f)) => (n.trim(), Some(f.trim())),
            None => (inner, None),
        };
        let value = if name == "target" {
            Some(target.as_str())
        } else {
            secrets.lookup(name)
        };
        let value = value.ok_or_else(|| {
            Failure::new(Exit::BadInput, format!("{}:{line}: unknown placeholder `{name}`", file.display())).hint(
                "use a key of [package.secrets], client_token.<client_id>, client_alias.<client_id> or target",
            )
        })?;
        let rendered = match filter {
            None => value.to_string(),
            Some("sha256") => hex::encode(Sha256::digest(value.as_bytes())),
            Some("json") => serde_json::to_string(value).expect("string serialises"),
            Some("werkzeug") => werkzeug_hash(name, value),
            Some(other) => {
                return Err(Failure::new(
                    Exit::BadInput,
                    format!(
                        "{}:{line}: unknown placeholder filter `{other}`",
                        file.display()
                    ),
                )
                .hint("filters are sha256, json and werkzeug"));
            }
        };
        out.push('\'');
        out.push_str(&rendered.replace('\'', "''"));
        out.push('\'');
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `pbkdf2:sha256:<n>$<salt>$<hex>`, the format `werkzeug.security.check_password_hash` reads. The
/// salt is derived from the secret so the same state file gives the same database bytes.
pub fn werkzeug_hash(name: &str, password: &str) -> String {
    let seed = Sha256::digest(format!("harness-werkzeug-salt\0{name}\0{password}").as_bytes());
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let salt: String = seed
        .iter()
        .take(16)
        .map(|b| ALPHA[*b as usize % ALPHA.len()] as char)
        .collect();
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        WERKZEUG_ITERATIONS,
        &mut out,
    );
    format!(
        "pbkdf2:sha256:{WERKZEUG_ITERATIONS}${salt}${}",
        hex::encode(out)
    )
}

/// Creates `db` from SQL files applied in order.
pub fn apply_sql(
    db: &Path,
    files: &[PathBuf],
    secrets: &Secrets,
    target: Target,
) -> Result<(), Failure> {
    let conn = open(db)?;
    // A fresh file in a scratch directory: durability buys nothing here, and an fsync per
    // autocommitted INSERT would dominate the build. Neither pragma changes the file's bytes.
    conn.execute_batch("PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY;")
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot prepare {}: {e}", db.display()),
            )
        })?;
    for file in files {
        let sql = std::fs::read_to_string(file).map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!("cannot read SQL file {}: {e}", file.display()),
            )
            .hint("fix the path in [package.database] sql / demo_sql or [targets.*] extra_sql")
        })?;
        let expanded = expand(&sql, file, secrets, target)?;
        conn.execute_batch(&expanded).map_err(|e| {
            Failure::new(
                Exit::BadInput,
                format!("{}: SQL failed: {e}", file.display()),
            )
            .hint("fix the statement; the database is rebuilt from scratch on every build")
        })?;
    }
    finalize(conn, db)
}

pub struct SeedCommand<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
}

/// Runs the app's own seed command, then normalises the file it made.
pub fn run_seed(db: &Path, seed: &SeedCommand) -> Result<(), Failure> {
    let (program, args) = seed.argv.split_first().expect("validated non-empty");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(seed.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The staged tree must stay free of bytecode: Python would otherwise write __pycache__ into it.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in &seed.env {
        cmd.env(k, v);
    }
    let shown = seed.argv.join(" ");
    let output = cmd.output().map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!("cannot run the seed command `{shown}`: {e}"),
        )
        .hint("check [package.database] seed_command in harness.toml")
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(Failure::new(
            Exit::Environment,
            format!(
                "the seed command `{shown}` failed ({}):\n{}",
                output.status,
                super::vendor::tail_lines(&text, 30)
            ),
        )
        .hint("run it by hand with the same HARNESS_* variables to debug; the previous package is unchanged"));
    }
    if !db.is_file() {
        return Err(Failure::new(
            Exit::Environment,
            format!(
                "the seed command `{shown}` succeeded but did not create {}",
                db.display()
            ),
        )
        .hint("it must create the database at $HARNESS_DB_PATH"));
    }
    let conn = open(db)?;
    finalize(conn, db)
}

fn open(db: &Path) -> Result<Connection, Failure> {
    Connection::open(db).map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!("cannot open database {}: {e}", db.display()),
        )
    })
}

/// Folds the WAL back into the main file and leaves rollback-journal mode, so the package carries
/// one self-contained file.
fn finalize(conn: Connection, db: &Path) -> Result<(), Failure> {
    let err = |e: rusqlite::Error| {
        Failure::new(
            Exit::Environment,
            format!("cannot finalise {}: {e}", db.display()),
        )
    };
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Failure::new(
            Exit::Environment,
            format!("{} stays in journal mode {mode}", db.display()),
        ));
    }
    conn.close().map_err(|(_, e)| err(e))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    Ok(())
}

/// A database schema normalised from pragmas, so that formatting differences in `CREATE`
/// statements do not count and structural ones always do.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Schema {
    pub tables: Vec<Table>,
    /// (type, name, normalised SQL) of triggers and views.
    pub objects: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    /// (name, type, notnull, default, pk, hidden)
    pub columns: Vec<(String, String, bool, Option<String>, i64, i64)>,
    /// (name, unique, origin, partial, columns)
    pub indexes: Vec<(String, bool, String, bool, Vec<String>)>,
}

pub fn describe(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('sqlite_sequence') AND name NOT LIKE 'sqlite_stat%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.sort();
    let mut tables = Vec::new();
    for name in names {
        let columns = conn
            .prepare("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0, r.get(3)?, r.get(4)?, r.get(5)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut indexes = Vec::new();
        let list: Vec<(String, bool, String, bool)> = conn
            .prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)")?
            .query_map([&name], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? != 0,
                    r.get(2)?,
                    r.get::<_, i64>(3)? != 0,
                ))
            })?
            .collect::<Result<_, _>>()?;
        for (iname, unique, origin, partial) in list {
            let cols = conn
                .prepare(
                    "SELECT coalesce(name, '<expr>') FROM pragma_index_info(?1) ORDER BY seqno",
                )?
                .query_map([&iname], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            indexes.push((iname, unique, origin, partial, cols));
        }
        indexes.sort();
        tables.push(Table {
            name,
            columns,
            indexes,
        });
    }
    let mut objects: Vec<(String, String, String)> = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE type IN ('trigger', 'view')")?
        .query_map([], |r| {
            let sql: String = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, sql.split_whitespace().collect::<Vec<_>>().join(" ")))
        })?
        .collect::<Result<_, _>>()?;
    objects.sort();
    Ok(Schema { tables, objects })
}

pub fn schema_fingerprint(schema: &Schema) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(schema).expect("schema serialises"),
    ))
}

/// Opens a database file read-only and fingerprints its schema.
pub fn fingerprint_file(db: &Path) -> Result<(Schema, String), Failure> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("cannot open database {}: {e}", db.display()),
            )
        })?;
    let schema = describe(&conn).map_err(|e| {
        Failure::new(
            Exit::Environment,
            format!("cannot read the schema of {}: {e}", db.display()),
        )
    })?;
    let fp = schema_fingerprint(&schema);
    Ok((schema, fp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::secrets::Client;

    fn secrets() -> Secrets {
        let mut s = Secrets::default();
        s.values.insert("admin_password".into(), "pa'ss".into());
        s.clients.push(Client {
            client_id: "primary".into(),
            alias: "A".repeat(16),
            token: "naf_tok".into(),
            description: String::new(),
            is_primary: true,
        });
        s
    }

    #[test]
    fn placeholders_become_quoted_literals() {
        let s = secrets();
        let f = Path::new("seed.sql");
        assert_eq!(
            expand("VALUES ({{admin_password}})", f, &s, Target::Local).unwrap(),
            "VALUES ('pa''ss')"
        );
        assert_eq!(
            expand("{{ admin_password | json }}", f, &s, Target::Local).unwrap(),
            "'\"pa''ss\"'"
        );
        assert_eq!(
            expand("{{target}}", f, &s, Target::Webhosting).unwrap(),
            "'webhosting'"
        );
        let sha = expand("{{client_token.primary|sha256}}", f, &s, Target::Local).unwrap();
        assert_eq!(
            sha,
            format!("'{}'", hex::encode(Sha256::digest(b"naf_tok")))
        );
        assert_eq!(
            expand("{{client_alias.primary}}", f, &s, Target::Local).unwrap(),
            format!("'{}'", "A".repeat(16))
        );
    }

    #[test]
    fn unknown_placeholder_names_file_and_line() {
        let e = expand(
            "SELECT 1;\nSELECT {{nope}};",
            Path::new("db/seed.sql"),
            &secrets(),
            Target::Local,
        )
        .unwrap_err();
        assert_eq!(e.exit, Exit::BadInput);
        assert!(e.message.starts_with("db/seed.sql:2: "), "{}", e.message);
        let e = expand(
            "{{admin_password|md5}}",
            Path::new("x.sql"),
            &secrets(),
            Target::Local,
        )
        .unwrap_err();
        assert!(e.message.contains("md5"));
    }

    #[test]
    fn werkzeug_hash_has_werkzeug_shape_and_is_deterministic() {
        // Werkzeug itself verifies these hashes in the example app's tests (tests/build.rs).
        let h = werkzeug_hash("admin_password", "secret");
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts[0], "pbkdf2:sha256:100000");
        assert_eq!(parts[1].len(), 16);
        assert_eq!(
            h,
            werkzeug_hash("admin_password", "secret"),
            "deterministic for the same secret"
        );
        assert_ne!(h, werkzeug_hash("admin_password", "other"));
    }

    #[test]
    fn schema_fingerprint_ignores_formatting_but_not_structure() {
        let fp = |sql: &str| {
            let c = Connection::open_in_memory().unwrap();
            c.execute_batch(sql).unwrap();
            schema_fingerprint(&describe(&c).unwrap())
        };
        let a = fp("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);");
        let b = fp(
            "create table t(\n  id integer primary key autoincrement,\n  name text not null\n); INSERT INTO t(name) VALUES ('x');",
        );
        assert_eq!(a, b, "case, layout and content do not count");
        let c = fp(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT,   name TEXT NOT NULL);INSERT INTO t(name) VALUES ('x');",
        );
        assert_eq!(a, c, "content and whitespace do not count");
        let d = fp(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, extra TEXT);",
        );
        assert_ne!(a, d);
        let e = fp(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL); CREATE INDEX i ON t(name);",
        );
        assert_ne!(a, e);
    }
}
