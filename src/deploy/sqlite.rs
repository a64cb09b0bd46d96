//! Consistent copies of a SQLite database on the server: one python3 script for deploy, backup,
//! rollback and `parity --remote`.
//!
//! The paths reach the script as arguments (`python3 -c SCRIPT SRC DEST`), each quoted once by
//! `ssh::quote`, never inside another language's string. The sqlite3 tool's `.backup 'FILE'`
//! dot-command needed a path inside a quoted SQL-ish argument inside a shell string: one missed
//! escape there ran a package's build id as shell code. The webhosting runs the app in Python,
//! so python3 and its sqlite3 module are there even where the sqlite3 tool is not.
use super::ssh::quote;

/// `argv[1]`: the database to copy, opened read-only (by a URI, with the path percent-encoded
/// so `?` or `#` in it mean nothing); `argv[2]`: where the copy goes, `-` for stdout. SQLite's
/// backup API copies a consistent snapshot, WAL included, while the app writes.
const COPY: &str = "\
import os, sqlite3, sys, tempfile, urllib.parse
src, dest = sys.argv[1], sys.argv[2]
uri = 'file:' + urllib.parse.quote(os.path.abspath(src)) + '?mode=ro'
out = dest
if dest == '-':
    fd, out = tempfile.mkstemp(suffix='.db')
    os.close(fd)
try:
    a = sqlite3.connect(uri, uri=True)
    b = sqlite3.connect(out)
    a.backup(b)
    b.close()
    a.close()
    if dest == '-':
        with open(out, 'rb') as f:
            sys.stdout.buffer.write(f.read())
finally:
    if dest == '-':
        os.unlink(out)
";

/// Copies the database `src` to `dest` (both server paths).
pub fn copy(src: &str, dest: &str) -> String {
    format!("python3 -c {} {} {}", quote(COPY), quote(src), quote(dest))
}

/// A consistent copy of `src` on stdout.
pub fn to_stdout(src: &str) -> String {
    format!("python3 -c {} {} -", quote(COPY), quote(src))
}

/// `argv[1]`: production's database, `argv[2]`: the package's. Copies `settings.secret_key`
/// byte for byte (as a blob, whatever it holds) and fails unless exactly one row changed.
const SECRET_KEY: &str = "\
import sqlite3, sys
live, staged = sys.argv[1], sys.argv[2]
row = sqlite3.connect(live).execute(\"SELECT CAST(value AS BLOB) FROM settings WHERE key = 'secret_key'\").fetchone()
if not row or row[0] is None or len(row[0]) == 0:
    sys.exit('production has no secret_key in settings')
db = sqlite3.connect(staged)
n = db.execute(\"UPDATE settings SET value = CAST(? AS TEXT) WHERE key = 'secret_key'\", (row[0],)).rowcount
db.commit()
if n != 1:
    sys.exit('the package database has no settings row secret_key')
";

/// Copies production's `settings.secret_key` into the staged database.
pub fn copy_secret_key(live: &str, staged: &str) -> String {
    format!(
        "python3 -c {} {} {}",
        quote(SECRET_KEY),
        quote(live),
        quote(staged)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    #[test]
    fn copies_any_path_without_running_it_and_reads_wal_content() {
        let d = tempfile::tempdir().unwrap();
        // A directory name made of everything that once broke out: quotes, $(...), ?, #, %.
        let weird = d.path().join("x'$(touch pwned)\"`touch pwned2`?#%20 dir");
        std::fs::create_dir(&weird).unwrap();
        let src = weird.join("app.db");
        let c = rusqlite::Connection::open(&src).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (42);")
            .unwrap();
        // The connection stays open, so the row lives in the WAL, not yet in the file.
        let dest = weird.join("copy.db");
        let o = sh(&copy(src.to_str().unwrap(), dest.to_str().unwrap()));
        assert!(o.status.success(), "{o:?}");
        let v: i64 = rusqlite::Connection::open(&dest)
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 42);
        let o = sh(&format!(
            "cd {} && {}",
            quote(d.path().to_str().unwrap()),
            to_stdout(src.to_str().unwrap())
        ));
        assert!(o.status.success(), "{o:?}");
        assert!(o.stdout.starts_with(b"SQLite format 3\0"));
        assert!(!d.path().join("pwned").exists() && !d.path().join("pwned2").exists());
        drop(c);
    }

    #[test]
    fn the_secret_key_is_copied_byte_for_byte() {
        let d = tempfile::tempdir().unwrap();
        let (live, staged) = (d.path().join("live.db"), d.path().join("staged.db"));
        let value = "\"k'e\\\\y\"";
        for (p, v) in [(&live, value), (&staged, "\"new\"")] {
            rusqlite::Connection::open(p)
                .unwrap()
                .execute_batch(&format!(
                    "CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT); \
                     INSERT INTO settings VALUES ('secret_key', '{}');",
                    v.replace('\'', "''")
                ))
                .unwrap();
        }
        let o = sh(&copy_secret_key(
            live.to_str().unwrap(),
            staged.to_str().unwrap(),
        ));
        assert!(o.status.success(), "{o:?}");
        let got: String = rusqlite::Connection::open(&staged)
            .unwrap()
            .query_row(
                "SELECT value FROM settings WHERE key='secret_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(got, value);
        let empty = d.path().join("empty.db");
        rusqlite::Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE settings(key TEXT, value TEXT);")
            .unwrap();
        let o = sh(&copy_secret_key(
            empty.to_str().unwrap(),
            staged.to_str().unwrap(),
        ));
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("no secret_key"));
    }
}
