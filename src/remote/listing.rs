//! The one read-only look at the server: what is live, the lock, free space, the tools, the kept
//! releases with their builds, and the backups, as `key=value` lines (parsed by
//! `deploy::remote::Preflight`); and `parity --remote`'s two: every file's sha256, and a
//! consistent copy of the database.
use super::layout::Layout;
use super::ssh::quote;

/// Read-only facts about the server, one `key=value` per line; run by deploy and by --dry-run.
pub fn preflight_script(layout: &Layout, db: Option<&str>) -> String {
    let live = quote(&layout.live);
    let lock = quote(&layout.lock());
    let db_test = match db {
        Some(db) => format!(
            "[ -f {} ] && echo live_db=yes || echo live_db=no",
            quote(&format!("{}/{db}", layout.live))
        ),
        None => "echo live_db=no".to_string(),
    };
    let shared = match db {
        Some(db) => {
            let (link, target) = (
                quote(&format!("{}/{db}", layout.live)),
                quote(&layout.shared_db(db)),
            );
            format!(
                "[ -L {link} ] && [ \"$(readlink {link})\" = {target} ] && echo db_shared=yes || echo db_shared=no\n\
                 [ -e {target} ] && echo shared_db=yes || echo shared_db=no"
            )
        }
        None => "echo db_shared=no".to_string(),
    };
    [
        format!("[ -d {live} ] && echo live=yes || echo live=no"),
        db_test,
        shared,
        format!(
            "[ -e {} ] && echo paused=yes || echo paused=no",
            quote(&layout.pause())
        ),
        format!(
            "if [ -d {lock} ]; then echo lock=yes; sed 's/^/lock./' {lock}/details 2>/dev/null; else echo lock=no; fi"
        ),
        format!(
            "echo free_kb=$(df -Pk {} 2>/dev/null | awk 'NR==2 {{print $4}}')",
            quote(layout.parent())
        ),
        // What a backup of the live release takes: the tree, and a copy of its database.
        // The shared database counts: it is outside the tree, and a backup copies it.
        format!(
            "[ -d {live} ] && echo live_kb=$(du -sk {live} {} 2>/dev/null | awk '{{s += $1}} END {{print s}}')",
            db.map(|d| quote(&layout.shared_db(d))).unwrap_or_default()
        ),
        format!(
            "echo live_build=$({})",
            json_field("build_id", &format!("{live}/build_info.json"))
        ),
        "for t in python3 unzip sha256sum tar; do command -v $t >/dev/null 2>&1 && echo tool.$t=yes || echo tool.$t=no; done".to_string(),
        // Kept releases with the build they hold, and backups with their size: one line each.
        format!(
            "for d in {}/*/; do [ -d \"$d\" ] || continue; n=${{d%/}}; n=${{n##*/}}; \
             printf 'release=%s\\t%s\\t%s\\t%s\\n' \"$n\" \"$({})\" \"$({})\" \"$({})\"; done",
            quote(&layout.releases()),
            json_field("build_id", "\"$d\"build_info.json"),
            json_field("built_at", "\"$d\"build_info.json"),
            json_field("schema", "\"$d\"build_info.json"),
        ),
        format!(
            "for f in {}/*.tar.gz; do [ -f \"$f\" ] || continue; n=${{f##*/}}; \
             printf 'backup=%s\\t%s\\n' \"${{n%.tar.gz}}\" \"$(wc -c < \"$f\" | tr -d ' ')\"; done",
            quote(&layout.backups())
        ),
    ]
    .join("\n")
}

/// A top-level string field of a pretty-printed build_info.json (one key per line), by sed, so
/// the server needs no Python for it.
fn json_field(key: &str, file: &str) -> String {
    format!("sed -n 's/^ *\"{key}\": *\"\\([^\"]*\\)\".*/\\1/p' {file} 2>/dev/null | head -n 1")
}

/// Separates the listing's sections; NUL never occurs in sha256sum's text or in a file name.
pub const PYCACHE_MARK: &str = "\0#pycache\0";
pub const SYMLINKS_MARK: &str = "#symlinks";

/// The one command that describes everything under `remote_dir`, in three sections:
/// - `sha256  ./path` lines for every regular file outside `__pycache__/` and `tmp/` (not logs),
///   with sha256sum's own escaping for names holding a backslash or newline;
/// - after a NUL, `#pycache` and the NUL-terminated names of the files in `__pycache__/` folders
///   (named, not hashed: only whether their source exists matters);
/// - `#symlinks` and the NUL-terminated names of every symbolic link.
///
/// `parity::remote::parse_listing` reads it.
pub fn listing_command(remote_dir: &str) -> String {
    format!(
        "cd -- {} && find . \\( -name __pycache__ -o -path ./tmp \\) -prune -o -type f \
         ! -name '*.log' -print0 | LC_ALL=C xargs -0 -r sha256sum -- \
         && printf '\\000#pycache\\000' \
         && find . -path ./tmp -prune -o -path '*/__pycache__/*' -type f -print0 \
         && printf '{SYMLINKS_MARK}\\000' \
         && find . -path ./tmp -prune -o -type l -print0",
        quote(remote_dir)
    )
}

/// The command that writes a consistent copy of the server's database to stdout (SQLite's
/// backup API, so a WAL that is not checkpointed yet is included): deploy's one script.
pub fn database_command(remote_dir: &str, db: &str) -> String {
    format!(
        "cd -- {} && {}",
        quote(remote_dir),
        super::sqlite::to_stdout(db)
    )
}
