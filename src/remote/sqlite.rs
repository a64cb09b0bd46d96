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
    python(COPY, &[src, dest])
}

/// `python3 -c SCRIPT ARGS…`, each quoted once: the one way a script of this module is run.
fn python(script: &str, args: &[&str]) -> String {
    let mut cmd = format!("python3 -c {}", quote(script));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&quote(a));
    }
    cmd
}

/// A consistent copy of `src` on stdout.
pub fn to_stdout(src: &str) -> String {
    python(COPY, &[src, "-"])
}

/// The shared database's maintenance, `python3 -c TOOL OP DB [ARG]`:
/// - `fence DB`: in one write transaction, a `BEFORE INSERT/UPDATE/DELETE` trigger on every table
///   that aborts with [`FENCE_MESSAGE`]. From its commit on, every write fails in every
///   connection, the ones an app keeps open included (SQLite re-reads a changed schema before
///   its next statement); reads go on. A write that was in flight either committed before the
///   fence (and is in every copy taken after it) or fails: none is acknowledged and then lost.
/// - `unfence DB`: drops those triggers (nothing else).
/// - `copy SRC DEST [unfence]`: SQLite's backup API into a new file (its journals removed first;
///   a stale `-wal` would be replayed into the copy), the copy unfenced when asked.
/// - `put SRC DEST`: SQLite's backup API into the existing database DEST, through its own
///   locking, so DEST keeps its inode and every open connection sees the new content (a rename
///   over it would leave them on the old file, and the old file's `-wal` beside the new one).
const TOOL: &str = "\
import os, sqlite3, sys, urllib.parse
op, db = sys.argv[1], sys.argv[2]
MSG = 'harness: writes are paused while a deploy changes the database; retry shortly'
def connect(path, mode):
    uri = 'file:' + urllib.parse.quote(os.path.abspath(path)) + '?mode=' + mode
    return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
def fences(c):
    return [r[0] for r in c.execute(\"SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'harness!_fence!_%' ESCAPE '!'\")]
def unfence(c):
    c.execute('BEGIN IMMEDIATE')
    for name in fences(c):
        c.execute('DROP TRIGGER \"%s\"' % name.replace('\"', '\"\"'))
    c.execute('COMMIT')
if op == 'fence':
    c = connect(db, 'rw')
    c.execute('BEGIN IMMEDIATE')
    if not fences(c):
        tables = [r[0] for r in c.execute(\"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' AND upper(sql) NOT LIKE 'CREATE VIRTUAL%' ORDER BY name\")]
        for i, t in enumerate(tables):
            for event in ('INSERT', 'UPDATE', 'DELETE'):
                c.execute('CREATE TRIGGER \"harness_fence_%d_%s\" BEFORE %s ON \"%s\" BEGIN SELECT RAISE(ABORT, \\'%s\\'); END'
                          % (i, event.lower(), event, t.replace('\"', '\"\"'), MSG))
    c.execute('COMMIT')
elif op == 'unfence':
    unfence(connect(db, 'rw'))
elif op == 'copy':
    dest = sys.argv[3]
    for suffix in ('', '-wal', '-shm', '-journal'):
        if os.path.lexists(dest + suffix):
            os.unlink(dest + suffix)
    src, out = connect(db, 'ro'), sqlite3.connect(dest, isolation_level=None)
    src.backup(out)
    if sys.argv[4:] == ['unfence']:
        unfence(out)
    out.close()
elif op == 'put':
    src, out = connect(db, 'ro'), connect(sys.argv[3], 'rw')
    src.backup(out)
    out.close()
else:
    sys.exit('unknown operation ' + op)
";

/// What a write gets from the database while it is fenced.
pub const FENCE_MESSAGE: &str =
    "harness: writes are paused while a deploy changes the database; retry shortly";

/// Fences `db`: every write fails from now on, reads go on (see [`TOOL`]).
pub fn fence(db: &str) -> String {
    python(TOOL, &["fence", db])
}

/// Drops the fence of `db`.
pub fn unfence(db: &str) -> String {
    python(TOOL, &["unfence", db])
}

/// A consistent copy of `src` in the new file `dest`, without the fence when `unfenced`.
pub fn copy_to_new(src: &str, dest: &str, unfenced: bool) -> String {
    let mut args = vec!["copy", src, dest];
    if unfenced {
        args.push("unfence");
    }
    python(TOOL, &args)
}

/// `src`'s content into the existing database `dest`, which keeps its inode (see [`TOOL`]).
pub fn put(src: &str, dest: &str) -> String {
    python(TOOL, &["put", src, dest])
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
    python(SECRET_KEY, &[live, staged])
}

/// `FILE-wal FILE-shm FILE-journal`, quoted: the files SQLite keeps beside a database.
pub fn journals(file: &str) -> String {
    ["-wal", "-shm", "-journal"]
        .iter()
        .map(|s| quote(&format!("{file}{s}")))
        .collect::<Vec<_>>()
        .join(" ")
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
    fn the_tool_says_what_fence_message_says() {
        assert!(TOOL.contains(&format!("MSG = '{FENCE_MESSAGE}'")));
    }

    /// The fence on a database an app keeps open: the open connection's next write fails, its
    /// reads go on, a copy is unfenced on request, and `put` reaches the open connection.
    #[test]
    fn fence_stops_writes_of_open_connections_copy_unfences_put_keeps_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("it's a \"dir\"");
        std::fs::create_dir(&dir).unwrap();
        let db = dir.join("app.db");
        let (db_s, copy_s) = (
            db.to_str().unwrap().to_string(),
            dir.join("copy.db").to_str().unwrap().to_string(),
        );
        let app = rusqlite::Connection::open(&db).unwrap();
        app.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE \"odd \"\"name\"(v); CREATE TABLE t(v); \
             INSERT INTO t VALUES (1);",
        )
        .unwrap();
        let inode = std::fs::metadata(&db).unwrap().ino();
        let o = sh(&fence(&db_s));
        assert!(o.status.success(), "{o:?}");
        // Twice is once: a fence left by an interrupted deploy is not doubled.
        assert!(sh(&fence(&db_s)).status.success());
        let err = app.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert!(err.to_string().contains(FENCE_MESSAGE), "{err}");
        assert!(
            app.execute("INSERT INTO \"odd \"\"name\" VALUES (2)", [])
                .is_err()
        );
        assert!(app.execute("UPDATE t SET v = 3", []).is_err());
        assert!(app.execute("DELETE FROM t", []).is_err());
        let n: i64 = app
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "reads go on");
        // A copy without the fence takes writes; the fenced original still does not.
        let o = sh(&copy_to_new(&db_s, &copy_s, true));
        assert!(o.status.success(), "{o:?}");
        let copy = rusqlite::Connection::open(&copy_s).unwrap();
        copy.execute("INSERT INTO t VALUES (7)", []).unwrap();
        drop(copy);
        // `put` lands in the file the app has open, fence included from the source when it
        // has one: here the copy has none, so the app writes again, into the same inode.
        let o = sh(&put(&copy_s, &db_s));
        assert!(o.status.success(), "{o:?}");
        assert_eq!(std::fs::metadata(&db).unwrap().ino(), inode);
        let seen: i64 = app
            .query_row("SELECT max(v) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seen, 7, "the open connection sees the put");
        app.execute("INSERT INTO t VALUES (8)", []).unwrap();
        // Fenced again, then unfenced: writes go through, and no trigger is left.
        assert!(sh(&fence(&db_s)).status.success());
        assert!(app.execute("INSERT INTO t VALUES (9)", []).is_err());
        let o = sh(&unfence(&db_s));
        assert!(o.status.success(), "{o:?}");
        app.execute("INSERT INTO t VALUES (9)", []).unwrap();
        let triggers: i64 = app
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 0);
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
