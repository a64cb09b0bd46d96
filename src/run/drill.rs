//! The restore drill (`harness backup webhosting --verify`): a backup of production's directory
//! is unpacked into a local stack (the app image behind the TLS proxy), its database is checked
//! with `PRAGMA integrity_check`, and the project's smoke selection (`[test] smoke`, default
//! `-m smoke`) runs against it in the playwright job. A backup counts as good only when all of
//! that passes; the report is written like a test run's.
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Finished, job, judge, report, select};
use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Phase, Reporter, Timings};
use crate::ledger::{Outcome, Selection};
use crate::model::target::Target;
use crate::model::timestamp::Timestamp;
use crate::stack;

pub struct DrillRequest {
    /// The backup (tar.gz of the remote directory, database included).
    pub tarball: PathBuf,
    /// How the backup is named in messages and the report.
    pub backup_id: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillOutcome {
    pub backup_id: String,
    pub backup_sha256: String,
    pub run_id: String,
    pub run_dir: PathBuf,
    pub outcome: &'static str,
    #[serde(skip)]
    pub exit: Exit,
    pub verdict: String,
    /// `ok`, or what `PRAGMA integrity_check` (or opening the database) said.
    pub integrity: String,
    #[serde(flatten)]
    pub counts: super::Counts,
    pub report: Option<PathBuf>,
}

/// `PRAGMA integrity_check` on the restored database: `Ok` or the problems it lists.
pub fn integrity_check(db: &Path) -> Result<(), String> {
    if !db.is_file() {
        return Err(format!("the backup holds no database at {}", db.display()));
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let rows: Result<Vec<String>, _> = conn.prepare("PRAGMA integrity_check").and_then(|mut st| {
        st.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    });
    match rows {
        Ok(rows) if rows == ["ok"] => Ok(()),
        Ok(rows) => Err(format!("integrity_check: {}", rows.join("; "))),
        Err(e) => Err(format!("integrity_check failed: {e}")),
    }
}

/// What build_info.json of the restored directory says, for the report.
#[derive(Default, serde::Deserialize)]
struct BuildInfo {
    #[serde(default)]
    build_id: String,
    #[serde(default)]
    fingerprints: Option<BuildFingerprints>,
}

#[derive(Default, serde::Deserialize)]
struct BuildFingerprints {
    #[serde(default)]
    code: String,
    #[serde(default)]
    schema: Option<String>,
}

pub fn drill(
    config: &Config,
    req: &DrillRequest,
    reporter: &dyn Reporter,
) -> Result<DrillOutcome, Failure> {
    let start = Instant::now();
    let started_at = Timestamp::now();
    let phases = Timings::default();
    let plan_job = super::plan_job(config, &[], reporter)?;
    let root = stack::project_root(config);
    let backup_sha256 = crate::package::sha256_file(&req.tarball)?;
    let selected = select::Selected {
        targets: plan_job.suite.roots.clone(),
        keyword: None,
        selection: Selection::Filtered {
            expr: format!("smoke: {}", config.test.smoke.join(" ")),
        },
        files: Vec::new(),
        extra: config.test.smoke.clone(),
    };
    let db_rel = config.database_path();
    let state_file = crate::package::secrets::state_file_path(&config.root, Target::Webhosting);

    let rt = stack::runtime()?;
    rt.block_on(async {
        let engine = stack::connect(reporter).await?;
        let plan = stack::plan_launch(
            &engine,
            config,
            &stack::LaunchRequest {
                with_mocks: false,
                no_tls: false,
                keep: false,
                test_job: true,
                playwright_server: false,
                vars: super::job_vars(config, false),
            },
            reporter,
        )
        .await?;
        let t = Phase::start(reporter, "restore");
        let mut launch = stack::materialize(
            config,
            plan,
            stack::AppSource::Backup(&req.tarball),
            &state_file,
            reporter,
        )?;
        t.finish_into(&phases, format!("backup {}", req.backup_id));
        let run_id = launch.run.id.clone();
        let run_dir = launch.run_dir.clone();
        let app_dir = run_dir.join("app");

        let t = Phase::start(reporter, "integrity");
        let integrity = match &db_rel {
            Some(rel) => integrity_check(&app_dir.join(rel)),
            None => Ok(()),
        };
        t.finish_into(
            &phases,
            match &integrity {
                Ok(()) => "ok".to_string(),
                Err(e) => e.clone(),
            },
        );
        let info: BuildInfo = std::fs::read(app_dir.join("build_info.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let fps = info.fingerprints.unwrap_or_default();

        // A damaged database fails the drill at once: nothing a smoke test says could make
        // that backup good.
        if let Err(problem) = &integrity {
            return Ok(DrillOutcome {
                backup_id: req.backup_id.clone(),
                backup_sha256,
                run_id,
                run_dir,
                outcome: Outcome::Red.as_str(),
                exit: Exit::Failed,
                verdict: format!("the restored database is damaged: {problem}"),
                integrity: problem.clone(),
                counts: Default::default(),
                report: None,
            });
        }

        let job = job::prepare(&mut launch, &plan_job.input(&selected, &root))?;
        let suite = super::run_suite(
            &engine,
            &launch,
            &job,
            reporter,
            &phases,
            None,
            std::future::pending(),
        )
        .await?;
        let (finished, ()) =
            super::finish(&engine, &launch, suite, false, reporter, &phases, || ()).await?;
        let Finished {
            images,
            collected,
            exit_code,
            ..
        } = finished;
        let judged = judge(
            exit_code,
            collected.suite.as_ref(),
            &collected.session,
            &selected.selection,
        );
        let verdict = format!(
            "restore drill of backup {}: {}",
            req.backup_id, judged.verdict
        );
        reporter.event(&Event::Note {
            message: verdict.clone(),
        });
        let counts = collected
            .suite
            .as_ref()
            .map(|s| s.counts())
            .unwrap_or_default();
        let report_path = run_dir.join("report.html");
        let html = report::render(&report::ReportData {
            run_id: &run_id,
            outcome: judged.outcome,
            verdict: verdict.clone(),
            started_at: started_at.rfc3339(),
            elapsed: start.elapsed(),
            selection: &selected.selection,
            with_mocks: false,
            tls: true,
            package_zip: &req.tarball,
            package_sha256: &backup_sha256,
            build_id: &info.build_id,
            code_fingerprint: &fps.code,
            schema_fingerprint: fps.schema.as_deref(),
            input_fingerprint: "(a backup: no build inputs)",
            git_commit: None,
            dirty: None,
            suite: collected.suite.as_ref(),
            attachments: &collected.attachments,
            page_screenshots: &collected.page_screenshots,
            written: &collected.written.files,
            routes: &collected.routes,
            parity: Err("a restore drill serves a backup, not a package".into()),
            images: &images,
            browser: collected.browser.as_deref(),
            phases: &phases.list(),
            run_dir: &run_dir,
        });
        crate::fsutil::write_private(&report_path, html.as_bytes())?;
        Ok(DrillOutcome {
            backup_id: req.backup_id.clone(),
            backup_sha256,
            run_id,
            run_dir,
            outcome: judged.outcome.as_str(),
            exit: judged.exit,
            verdict,
            integrity: "ok".into(),
            counts,
            report: Some(report_path),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_check_passes_a_good_database_and_names_damage() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            c.execute_batch(
                "PRAGMA page_size=1024; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); \
                 CREATE INDEX t_v ON t(v);",
            )
            .unwrap();
            for i in 0..500 {
                c.execute("INSERT INTO t(v) VALUES (?1)", [format!("value {i:05}")])
                    .unwrap();
            }
        }
        assert_eq!(integrity_check(&db), Ok(()));

        // Overwrite a page in the middle of the file: the b-trees no longer add up.
        let mut bytes = std::fs::read(&db).unwrap();
        let len = bytes.len();
        for b in &mut bytes[len / 2..len / 2 + 1024] {
            *b = 0x5a;
        }
        std::fs::write(&db, &bytes).unwrap();
        let e = integrity_check(&db).unwrap_err();
        assert!(e.contains("integrity") || e.contains("malformed"), "{e}");

        assert!(integrity_check(&dir.path().join("missing.db")).is_err());
    }
}
