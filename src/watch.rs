//! `harness up --watch`: the running app follows the sources.
//!
//! The files a build would package (`[package] sources`, `entry_point`, `extra_files`, with the
//! excludes) are watched (`notify`, inotify on Linux). After a burst of events settles, the
//! walk is taken again and compared with the last one by size and mtime; only the files that
//! differ go to the app's folder in the container, as one archive through the Engine API (so a
//! remote engine works too), with the package's own bytes (the entry point's write pause, the
//! secret guard). Removed files are removed there. `vendor/` and the database are never
//! touched. Anything but `static/` files restarts the app through tmp/restart.txt, which the
//! run's Passenger checks on every request (stat throttle 0), and the app is asked for its
//! health path at once, so a broken import shows its traceback here and not in the browser.
//! Files that a push cannot apply (harness.toml, the requirements, SQL, the seed's inputs) only
//! say so.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::package::stage::{self, SourceFile};
use crate::stack::{APP_ROOT, AppContainer, Engine};

/// Events closer than this are one change (an editor's write, rename and chmod of one save).
const SETTLE: Duration = Duration::from_millis(40);
/// How long a restarted app may take to answer before watch stops waiting for it.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// What one settled change means for the running app.
#[derive(Debug, Default, PartialEq)]
pub struct Change {
    /// Package paths written (new or changed).
    pub written: Vec<String>,
    /// Package paths that no longer exist.
    pub removed: Vec<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.written.is_empty() && self.removed.is_empty()
    }

    /// Everything but static files restarts the app: Python modules, templates (Flask caches
    /// them), data files the app reads at import.
    pub fn needs_restart(&self) -> bool {
        self.written
            .iter()
            .chain(&self.removed)
            .any(|p| !is_static(p))
    }
}

fn is_static(path: &str) -> bool {
    path.split('/').any(|part| part == "static")
}

/// The state of the packaged files: package path → (size, mtime).
pub type Snapshot = BTreeMap<String, (u64, i128)>;

pub fn snapshot(files: &[SourceFile]) -> Snapshot {
    files
        .iter()
        .map(|f| (f.zip_path.clone(), (f.size, f.mtime_ns)))
        .collect()
}

/// What differs between two walks.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Change {
    Change {
        written: after
            .iter()
            .filter(|(p, v)| before.get(*p) != Some(v))
            .map(|(p, _)| p.clone())
            .collect(),
        removed: before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .cloned()
            .collect(),
    }
}

/// The files a push cannot apply: the config, the requirements (vendor/), the database's SQL
/// and the local target's env files. Absolute paths.
fn restart_only_files(config: &Config) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::from([config.file.clone()]);
    if let Some(reqs) = &config.package.requirements {
        for r in reqs.get_ref().items() {
            files.insert(config.path(r));
        }
    }
    if let Some(db) = &config.package.database {
        for s in db.get_ref().sql.iter().chain(&db.get_ref().demo_sql) {
            files.insert(config.path(s.get_ref()));
        }
    }
    // The app's environment is set when its container starts.
    if let Some(env_files) = &config.target(crate::model::target::Target::Local).env_file {
        for (path, _) in env_files.get_ref().items() {
            files.insert(config.path(path));
        }
    }
    files
}

/// The folders to watch: each mapping's source (a folder, or a file's folder), and the folders
/// of the restart-only files.
fn watch_roots(config: &Config, restart_only: &BTreeSet<PathBuf>) -> Vec<(PathBuf, bool)> {
    let pkg = &config.package;
    let mut roots: BTreeMap<PathBuf, bool> = BTreeMap::new();
    for m in pkg
        .sources
        .iter()
        .chain(std::iter::once(&pkg.entry_point))
        .chain(&pkg.extra_files)
    {
        let p = config.path(m.from.get_ref());
        if p.is_dir() {
            roots.insert(p, true);
        } else if let Some(parent) = p.parent() {
            roots.entry(parent.to_path_buf()).or_insert(false);
        }
    }
    for f in restart_only {
        if let Some(parent) = f.parent() {
            roots.entry(parent.to_path_buf()).or_insert(false);
        }
    }
    // A folder watched recursively covers the ones below it.
    let recursive: Vec<PathBuf> = roots
        .iter()
        .filter(|(_, r)| **r)
        .map(|(p, _)| p.clone())
        .collect();
    roots
        .into_iter()
        .filter(|(p, r)| *r || !recursive.iter().any(|top| p.starts_with(top)))
        .collect()
}

/// The tar that writes `written` (and, for a restart, tmp/restart.txt) into the app folder,
/// owned as the package is (the app runs as the owner of its folder).
fn archive(
    config: &Config,
    files: &BTreeMap<String, SourceFile>,
    change: &Change,
    owner: (u32, u32),
    restart_mtime: Option<u64>,
) -> Result<Vec<u8>, Failure> {
    let allowed = stage::allowed_secrets(config);
    let mut tar = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    let io = |e: std::io::Error| {
        Failure::new(Exit::Environment, format!("cannot build the archive: {e}"))
    };
    let mut add_dirs = |tar: &mut tar::Builder<Vec<u8>>, path: &str| -> Result<(), Failure> {
        let mut at = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            at = if at.is_empty() {
                part.to_string()
            } else {
                format!("{at}/{part}")
            };
            if dirs.insert(at.clone()) {
                let mut h = header(owner, 0o755, 0, now_secs());
                h.set_entry_type(tar::EntryType::Directory);
                tar.append_data(&mut h, format!("{at}/"), std::io::empty())
                    .map_err(io)?;
            }
        }
        Ok(())
    };
    for path in &change.written {
        let Some(f) = files.get(path) else { continue };
        let bytes = stage::packaged_bytes(config, &allowed, f)?;
        add_dirs(&mut tar, path)?;
        let mut h = header(owner, f.mode, bytes.len() as u64, now_secs());
        tar.append_data(&mut h, path, bytes.as_slice())
            .map_err(io)?;
    }
    if let Some(mtime) = restart_mtime {
        add_dirs(&mut tar, "tmp/restart.txt")?;
        let mut h = header(owner, 0o644, 0, mtime);
        tar.append_data(&mut h, "tmp/restart.txt", std::io::empty())
            .map_err(io)?;
    }
    tar.into_inner().map_err(io)
}

/// A tar header of a file the app's owner owns.
fn header(owner: (u32, u32), mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_uid(owner.0.into());
    h.set_gid(owner.1.into());
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Watches until Ctrl-C, then removes the run.
pub fn watch(
    config: &Config,
    up: &crate::stack::UpOutcome,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let Some(app) = up.app.clone() else {
        return Err(Failure::new(
            Exit::Environment,
            "watch: the run has no app container with a published port 80",
        ));
    };
    let rt = crate::docker::runtime()?;
    let result = rt.block_on(async {
        let engine = Engine::connect().await?;
        follow(config, &engine, &app, reporter).await
    });
    reporter.event(&Event::Note {
        message: format!("watch stopped; removing run {}", up.run_id),
    });
    let removed = crate::stack::down(
        config,
        &crate::stack::DownRequest {
            run: Some(up.run_id.clone()),
            all: false,
        },
        reporter,
    );
    result.and(removed.map(|_| ()))
}

async fn follow(
    config: &Config,
    engine: &Engine,
    app: &AppContainer,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    use notify::Watcher;
    let restart_only = restart_only_files(config);
    let roots = watch_roots(config, &restart_only);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<notify::Event>();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev {
            let _ = tx.send(ev);
        }
    })
    .map_err(|e| Failure::new(Exit::Environment, format!("watch: cannot watch files: {e}")))?;
    for (root, recursive) in &roots {
        let mode = if *recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        watcher.watch(root, mode).map_err(|e| {
            Failure::new(
                Exit::Environment,
                format!("watch: cannot watch {}: {e}", root.display()),
            )
            .hint("on Linux, raise fs.inotify.max_user_watches if the limit is reached")
        })?;
    }
    let mut last = snapshot(&stage::walk(config)?);
    let owner = owner_of_app(engine, app).await?;
    reporter.event(&Event::Note {
        message: format!(
            "watching {} files under {} (Ctrl-C stops watching and removes the run)",
            last.len(),
            roots
                .iter()
                .map(|(p, _)| p
                    .strip_prefix(&config.root)
                    .unwrap_or(p)
                    .display()
                    .to_string())
                .map(|p| if p.is_empty() { ".".into() } else { p })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    let mut restart_mtime = 0u64;
    // One listener for the whole session: a Ctrl-C during a push is seen at the next wait.
    let mut stop = tokio::spawn(crate::stack::interrupted());
    loop {
        let first = tokio::select! {
            ev = rx.recv() => match ev { Some(ev) => ev, None => return Ok(()) },
            _ = &mut stop => return Ok(()),
        };
        let mut paths: BTreeSet<PathBuf> = relevant(first.paths).collect();
        if paths.is_empty() {
            continue;
        }
        let saved_at = Instant::now();
        while let Ok(Some(ev)) = tokio::time::timeout(SETTLE, rx.recv()).await {
            paths.extend(relevant(ev.paths));
        }
        let touched: Vec<&PathBuf> = paths.iter().filter(|p| restart_only.contains(*p)).collect();
        for p in &touched {
            reporter.event(&Event::Warning {
                message: format!(
                    "{} changed: restart `harness up --watch` to apply it (watch pushes only the \
                     app's own files; vendor/ and the database stay as they are)",
                    p.strip_prefix(&config.root).unwrap_or(p).display()
                ),
            });
        }
        let walked = match stage::walk(config) {
            Ok(w) => w,
            Err(e) => {
                reporter.event(&Event::Warning {
                    message: format!("not pushed: {}", e.message),
                });
                continue;
            }
        };
        let now = snapshot(&walked);
        let change = diff(&last, &now);
        if change.is_empty() {
            continue;
        }
        let by_path: BTreeMap<String, SourceFile> = walked
            .iter()
            .map(|f| (f.zip_path.clone(), f.clone()))
            .collect();
        let restart = change.needs_restart();
        let mtime = restart.then(|| {
            // Passenger compares mtimes in whole seconds: two saves in one second still differ.
            restart_mtime = now_secs().max(restart_mtime + 1);
            restart_mtime
        });
        match push(engine, config, app, &by_path, &change, owner, mtime).await {
            Ok(()) => {}
            Err(e) => {
                reporter.event(&Event::Warning {
                    message: format!("not pushed: {}", e.message),
                });
                continue;
            }
        }
        last = now;
        let what = describe(&change);
        if !restart {
            reporter.event(&Event::Note {
                message: format!(
                    "pushed {what} in {} ms (static: no restart)",
                    saved_at.elapsed().as_millis()
                ),
            });
            continue;
        }
        let pushed_ms = saved_at.elapsed().as_millis();
        let since = SystemTime::now();
        match answer(config, app).await {
            Ok(status) if (200..400).contains(&status) => reporter.event(&Event::Note {
                message: format!(
                    "pushed {what} in {pushed_ms} ms; the app restarted and answers {status} \
                     ({:.1} s after the save)",
                    saved_at.elapsed().as_secs_f64()
                ),
            }),
            Ok(status) => {
                let lines = app_output_since(engine, app, since).await;
                reporter.event(&Event::Warning {
                    message: format!(
                        "pushed {what}; the app answers {status} on {}. Its output:\n{}\n\
                         Fix it and save again: the next push restarts it.",
                        config.stack.health_path,
                        if lines.is_empty() {
                            "  (nothing; see `harness logs app`)".to_string()
                        } else {
                            lines
                        }
                    ),
                });
            }
            Err(why) => reporter.event(&Event::Warning {
                message: format!("pushed {what}; {why}"),
            }),
        }
    }
}

/// Paths that can change what is packaged: not harness's own folder (a project packaged from
/// its root would otherwise wake watch with every log line of the run), git's, or Python's
/// caches, which the build always leaves out.
fn relevant(paths: Vec<PathBuf>) -> impl Iterator<Item = PathBuf> {
    paths.into_iter().filter(|p| {
        !p.components().any(|c| {
            matches!(
                c.as_os_str().to_str(),
                Some(".harness" | ".git" | "__pycache__")
            )
        })
    })
}

fn describe(change: &Change) -> String {
    let mut parts = Vec::new();
    let list = |v: &[String]| {
        let mut s = v.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 3 {
            s.push_str(&format!(" and {} more", v.len() - 3));
        }
        s
    };
    if !change.written.is_empty() {
        parts.push(list(&change.written));
    }
    if !change.removed.is_empty() {
        parts.push(format!("removed {}", list(&change.removed)));
    }
    parts.join("; ")
}

async fn push(
    engine: &Engine,
    config: &Config,
    app: &AppContainer,
    files: &BTreeMap<String, SourceFile>,
    change: &Change,
    owner: (u32, u32),
    restart_mtime: Option<u64>,
) -> Result<(), Failure> {
    if !change.removed.is_empty() {
        let paths: Vec<String> = change
            .removed
            .iter()
            .map(|p| format!("{APP_ROOT}/{p}"))
            .collect();
        let mut argv = vec!["rm", "-f", "--"];
        argv.extend(paths.iter().map(String::as_str));
        let (code, out) = engine.exec(&app.container_id, None, &argv).await?;
        if code != 0 {
            return Err(Failure::new(
                Exit::Environment,
                format!(
                    "removing {} in the container failed: {}",
                    describe(change),
                    out.trim()
                ),
            ));
        }
    }
    let tar = archive(config, files, change, owner, restart_mtime)?;
    engine.put_archive(&app.container_id, APP_ROOT, tar).await?;
    Ok(())
}

/// The owner of the app's folder in the container: pushed files get it, as the package's did.
async fn owner_of_app(engine: &Engine, app: &AppContainer) -> Result<(u32, u32), Failure> {
    let (code, out) = engine
        .exec(&app.container_id, None, &["stat", "-c", "%u %g", APP_ROOT])
        .await?;
    let mut it = out.split_whitespace().map(str::parse::<u32>);
    match (code, it.next(), it.next()) {
        (0, Some(Ok(uid)), Some(Ok(gid))) => Ok((uid, gid)),
        _ => Err(Failure::new(
            Exit::Environment,
            format!(
                "watch: cannot read the owner of {APP_ROOT} in the app: {}",
                out.trim()
            ),
        )),
    }
}

/// Asks the app's health path directly (not through the proxy) until it answers: its status,
/// or why it did not answer.
async fn answer(config: &Config, app: &AppContainer) -> Result<u16, String> {
    let deadline = Instant::now() + ANSWER_LIMIT;
    loop {
        match crate::stack::wait::get_status(app.port, &config.stack.health_path).await {
            Ok(status) => return Ok(status),
            Err(e) if Instant::now() > deadline => {
                return Err(format!(
                    "the app did not answer within {} s: {e}",
                    ANSWER_LIMIT.as_secs()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The app container's output since `since` (the last 60 lines): Passenger's start error with
/// the app's traceback, when an import broke.
async fn app_output_since(engine: &Engine, app: &AppContainer, since: SystemTime) -> String {
    let from = since
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
        - 0.5;
    let Ok(text) = engine.timed_log_of(&app.container_id, "app").await else {
        return String::new();
    };
    let lines: Vec<String> = crate::run::evidence::parse_timed_log(&text)
        .into_iter()
        .filter(|l| l.at >= from)
        .map(|l| format!("  {}", l.text))
        .collect();
    let skip = lines.len().saturating_sub(60);
    lines[skip..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(items: &[(&str, u64, i128)]) -> Snapshot {
        items
            .iter()
            .map(|(p, s, m)| (p.to_string(), (*s, *m)))
            .collect()
    }

    #[test]
    fn diff_lists_new_changed_and_removed_files() {
        let before = snap(&[
            ("app.py", 10, 1),
            ("templates/a.html", 5, 1),
            ("old.py", 1, 1),
        ]);
        let after = snap(&[
            ("app.py", 10, 2),
            ("templates/a.html", 5, 1),
            ("new.py", 3, 1),
        ]);
        let c = diff(&before, &after);
        assert_eq!(c.written, vec!["app.py", "new.py"]);
        assert_eq!(c.removed, vec!["old.py"]);
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn events_in_harness_git_and_cache_folders_are_not_changes() {
        let kept: Vec<PathBuf> = relevant(vec![
            "/p/.harness/runs/x/logs/app.log".into(),
            "/p/.git/index".into(),
            "/p/src/__pycache__/a.cpython-311.pyc".into(),
            "/p/src/app.py".into(),
            "/p/src/.harnessy/x".into(),
        ])
        .collect();
        assert_eq!(
            kept,
            vec![
                PathBuf::from("/p/src/app.py"),
                PathBuf::from("/p/src/.harnessy/x")
            ]
        );
    }

    #[test]
    fn only_static_files_skip_the_restart() {
        let c = |w: &[&str], r: &[&str]| Change {
            written: w.iter().map(|s| s.to_string()).collect(),
            removed: r.iter().map(|s| s.to_string()).collect(),
        };
        assert!(!c(&["static/app.css", "shop/static/logo.png"], &[]).needs_restart());
        assert!(c(&["static/app.css", "templates/index.html"], &[]).needs_restart());
        assert!(c(&["views.py"], &[]).needs_restart());
        assert!(c(&[], &["templates/gone.html"]).needs_restart());
        assert!(!c(&[], &["static/gone.css"]).needs_restart());
        // A file whose name only contains the word is not static.
        assert!(c(&["staticfiles.py"], &[]).needs_restart());
    }

    #[test]
    fn the_archive_carries_the_owner_parents_and_restart_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/templates")).unwrap();
        std::fs::write(dir.path().join("src/templates/index.html"), "<h1>hi</h1>").unwrap();
        std::fs::write(dir.path().join("src/app.py"), "x = 1\n").unwrap();
        std::fs::write(
            dir.path().join("harness.toml"),
            "[package]\nsources = [{ from = \"src\", to = \"\" }]\n\
             entry_point = { from = \"src/app.py\", to = \"passenger_wsgi.py\" }\n",
        )
        .unwrap();
        let config = crate::config::Config::load(dir.path(), None).unwrap();
        let files: BTreeMap<String, SourceFile> = stage::walk(&config)
            .unwrap()
            .into_iter()
            .map(|f| (f.zip_path.clone(), f))
            .collect();
        let change = Change {
            written: vec!["templates/index.html".into()],
            removed: vec![],
        };
        let bytes = archive(&config, &files, &change, (1234, 2345), Some(99)).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1234, 2345));
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mtime().unwrap(),
            ));
        }
        let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "templates/",
                "templates/index.html",
                "tmp/",
                "tmp/restart.txt"
            ]
        );
        assert_eq!(seen[3].1, 99);
    }

    #[test]
    fn watch_roots_fold_nested_folders_into_the_recursive_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/pkg")).unwrap();
        std::fs::write(dir.path().join("src/pkg/x.py"), "").unwrap();
        std::fs::write(dir.path().join("src/wsgi.py"), "").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "").unwrap();
        std::fs::write(
            dir.path().join("harness.toml"),
            "[package]\nsources = [{ from = \"src\", to = \"\" }]\n\
             entry_point = { from = \"src/wsgi.py\", to = \"passenger_wsgi.py\" }\n\
             requirements = \"requirements.txt\"\n\n\
             [targets.local]\nenv_file = [\".env.defaults\", { path = \".env\", required = false }]\n",
        )
        .unwrap();
        let config = crate::config::Config::load(dir.path(), None).unwrap();
        let only = restart_only_files(&config);
        assert!(only.contains(&config.path("requirements.txt")));
        assert!(
            only.contains(&config.path(".env.defaults")) && only.contains(&config.path(".env"))
        );
        assert!(only.contains(&config.file));
        let roots = watch_roots(&config, &only);
        let root = config.root.clone();
        assert_eq!(roots, vec![(root.clone(), false), (root.join("src"), true)]);
    }
}
