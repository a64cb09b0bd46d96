//! `harness test`: the production-parity run end to end.
//!
//! package (built, or reused when fresh) → the run's stack (app under Passenger, the TLS proxy,
//! the mocks) → the browser suite in the playwright job → collect (junit.xml, artifacts, logs,
//! proxy log, image ids) → single-file HTML report → teardown → ledger. Every step is a timed
//! phase; an error, SIGINT or SIGTERM at any point removes the run's containers, network and
//! volumes, and the ledger records how the run ended.
use crate::model::pytest_args as args;
mod drill;
pub(crate) mod evidence;
pub(crate) mod job;
mod junit;
mod proxylog;
pub mod pytestcfg;
mod report;
pub mod select;
pub mod tree;
mod workers;

use crate::model::target::Target;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use drill::{DrillOutcome, DrillRequest, drill};
pub use junit::{CaseStatus, Counts, SuiteResult};
pub use select::{SelectionRequest, Shard};
pub use workers::MAX_WORKERS;

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Phase, Reporter, Timings};
use crate::ledger::{Outcome, RunRecord, Selection};
use crate::model::timestamp::Timestamp;
use crate::package::PackageManifest;
use crate::stack::{self, ServiceUrl, StackHandle};

pub struct TestRequest {
    pub with_mocks: bool,
    pub no_tls: bool,
    /// Reuse the local package when its input fingerprint matches the sources.
    pub skip_build: bool,
    /// Seed the database again even when the seed cache has it (`--reseed`).
    pub reseed: bool,
    /// Leave the stack up afterwards (until `harness down`).
    pub keep: bool,
    pub selection: SelectionRequest,
    /// `harness test -- ARGS`: handed to pytest after `[test] args`.
    pub pytest_args: Vec<String>,
    /// Stacks run side by side, the selection dealt over them (`--workers`).
    pub workers: u32,
}

/// How a run ended, for the CLI and scripts (`--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub outcome: &'static str,
    #[serde(skip)]
    pub exit: Exit,
    pub exit_code: u8,
    pub verdict: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub selection: String,
    pub files: usize,
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub ledger_run: Option<i64>,
    pub parity: String,
    /// The stack's addresses when it was kept (`--keep`).
    pub kept: Option<Vec<ServiceUrl>>,
    pub pytest_seconds: f64,
    pub elapsed_seconds: f64,
    pub phases: Vec<(String, f64)>,
    /// With `--workers`: every worker's run id, the first being `run_id` (whose folder holds
    /// the merged junit.xml and the report).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
}

/// What the suite step produced, before it is judged.
struct SuiteRun {
    exit_code: i64,
    handle: StackHandle,
    /// Service → image id, read while the suite ran (the containers go first at the end).
    images: BTreeMap<String, String>,
    /// Started when the job said pytest exited, before its container stopped: the app's
    /// evidence after a red run, then the removal of the services with nothing to bring back.
    early_teardown: Option<EarlyTeardown>,
}

/// What starts once the job says pytest exited (`early_teardown`).
struct EarlyTeardown {
    /// The app's evidence after a red run; `job::collect` reads it, so it is awaited before.
    evidence: futures_util::future::Shared<futures_util::future::BoxFuture<'static, ()>>,
    /// The removal of the services with nothing to bring back, once the evidence is saved.
    removal: tokio::task::JoinHandle<Result<usize, stack::StackError>>,
}

/// The compose variables the test job's files (test.yml, tls-test.yml, mocks-test.yml) need.
pub(crate) fn job_vars(config: &Config, no_tls: bool) -> BTreeMap<String, String> {
    let (uid, gid) = crate::fsutil::host_ids();
    let scheme = if no_tls { "http" } else { "https" };
    // Per run: Mailpit's API is protected like a real one behind a proxy would be.
    let mailpit_password = hex::encode(rand::random::<[u8; 12]>());
    BTreeMap::from([
        (
            "HARNESS_UI_BASE_URL".to_string(),
            format!("{scheme}://{}", config.stack.fqdn),
        ),
        ("HARNESS_SCHEME".to_string(), scheme.to_string()),
        ("HARNESS_UID".to_string(), uid.to_string()),
        ("HARNESS_GID".to_string(), gid.to_string()),
        ("HARNESS_MAILPIT_PASSWORD".to_string(), mailpit_password),
    ])
}

/// How long the suite may run: HARNESS_TEST_TIMEOUT seconds, default one hour.
fn suite_timeout() -> Duration {
    std::env::var("HARNESS_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(3600))
}

/// What the job needs that can be checked before Docker is asked for anything: the suite as
/// pytest will collect it, the requirements with every file they include, the tree the job
/// gets a copy of, and the user's arguments and environment.
pub(super) struct JobPlan {
    suite: select::Suite,
    requirements: Option<crate::requirements::RequirementSet>,
    tree: tree::Tree,
    /// `[test] args`, then `harness test -- ARGS`.
    user_args: Vec<String>,
    env: crate::envfile::Layers,
    playwright_server_env: Option<String>,
}

pub(super) fn plan_job(
    config: &Config,
    cli_args: &[String],
    reporter: &dyn Reporter,
) -> Result<JobPlan, Failure> {
    args::check(cli_args).map_err(|why| {
        Failure::new(Exit::BadInput, format!("harness test -- ...: {why}"))
            .hint("harness sets these itself; docs/test.md lists what the job is given")
    })?;
    let requirements = config
        .test
        .requirements
        .as_ref()
        .map(|r| crate::requirements::of_config(config, "[test] requirements", r))
        .transpose()?;
    let t = Instant::now();
    let read: Vec<PathBuf> = requirements
        .as_ref()
        .map(|r| r.files.iter().map(|f| f.path.clone()).collect())
        .unwrap_or_default();
    let tree = tree::collect(config, &read)?;
    reporter.event(&Event::Note {
        message: format!(
            "tree: {} files, {:.1} MB from {}{} ({} ms)",
            tree.files.len(),
            tree.bytes as f64 / 1e6,
            tree.root.display(),
            if tree.from_git {
                " (git: tracked and untracked, not ignored)"
            } else {
                ""
            },
            t.elapsed().as_millis()
        ),
    });
    let suite = select::discover(&config.root, &config.test.path, &tree.root)?;
    let mut user_args = config.test.args().to_vec();
    user_args.extend(cli_args.iter().cloned());
    Ok(JobPlan {
        suite,
        requirements,
        tree,
        user_args,
        env: config.env_layers(crate::config::EnvScope::Test)?,
        playwright_server_env: config.test.playwright_server_env(),
    })
}

impl JobPlan {
    fn input<'a>(&'a self, selected: &'a select::Selected, root: &'a Path) -> job::JobInput<'a> {
        job::JobInput {
            selected,
            tree: &self.tree,
            requirements: self.requirements.as_ref(),
            user_args: &self.user_args,
            env: &self.env,
            // Per project, so `--lf` and `--ff` work across runs.
            pytest_cache: root.join(".harness").join("pytest-cache"),
            playwright_server_env: self.playwright_server_env.clone(),
        }
    }
}

/// Runs the suite. `Ok` for every run that reached a verdict (green, red); `Err` for bad input
/// (exit 2), infrastructure failures (exit 3, recorded as `infra`) and interrupts (exit 130,
/// recorded as `aborted`).
pub fn test(
    config: &Config,
    req: &TestRequest,
    reporter: &dyn Reporter,
) -> Result<TestOutcome, Failure> {
    let start = Instant::now();
    let started_at = Timestamp::now();
    let phases = Timings::default();

    // Cheap checks first: the test folder, the selection, the arguments and the requirements
    // are bad input before anything is built or started.
    let root = stack::project_root(config);
    let cwd = std::env::current_dir().unwrap_or_else(|_| root.clone());
    let plan_job = plan_job(config, &req.pytest_args, reporter)?;
    let selected = select::select(&plan_job.suite, &req.selection, &cwd)?;
    reporter.event(&Event::Note {
        message: format!(
            "suite: {} test file(s) of {} in {} ({}; pytest config: {})",
            selected.files.len(),
            plan_job.suite.files.len(),
            plan_job.suite.dir().display(),
            selected.selection,
            plan_job
                .suite
                .config
                .file
                .as_ref()
                .map_or("none, pytest's defaults".to_string(), |f| f
                    .display()
                    .to_string())
        ),
    });

    let shares = select::split(&selected, req.workers);
    if shares.len() > 1 {
        reporter.event(&Event::Note {
            message: format!(
                "workers: {} stacks side by side ({})",
                shares.len(),
                shares
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("w{}: {} file(s)", i + 1, s.files.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }

    let rt = stack::runtime()?;
    rt.block_on(async {
        let engine = stack::connect(reporter).await?;
        let mut plans = Vec::new();
        for _ in &shares {
            plans.push(
                stack::plan_launch(
                    &engine,
                    config,
                    &stack::LaunchRequest {
                        with_mocks: req.with_mocks,
                        no_tls: req.no_tls,
                        keep: req.keep,
                        test_job: true,
                        playwright_server: config.test.playwright_server_env().is_some(),
                        vars: job_vars(config, req.no_tls),
                    },
                    reporter,
                )
                .await?,
            );
        }

        // The package. Interrupting this step needs no cleanup: nothing exists in Docker yet,
        // and the build writes its zip by rename.
        let t = Phase::start(reporter, "package");
        let package = local_package(config, req.skip_build, req.reseed, reporter)?;
        t.finish_into(
            &phases,
            format!(
                "{} {}",
                if package.1 { "reused" } else { "built" },
                package.0.zip.display()
            ),
        );
        let (package, _) = package;
        let git = crate::git::head_facts(&root);
        let mut record = RunRecord::start(
            Target::Local,
            &package.sha256,
            &package.fingerprints,
            &git,
            selected.selection.clone(),
        );
        record.started_at = started_at;
        record.pytest_args = plan_job.user_args.clone();
        record.test_env = crate::ledger::EnvDigest::of_layers(&plan_job.env);

        // Each worker gets its own copy of the app and its database, from the same zip.
        let t = Phase::start(reporter, "run dir");
        let mut launches = Vec::new();
        let mut jobs = Vec::new();
        for (plan, share) in plans.into_iter().zip(&shares) {
            let mut launch = stack::materialize(
                config,
                plan,
                stack::AppSource::Package(&package.zip),
                &package.state_file,
                reporter,
            )?;
            jobs.push(job::prepare(&mut launch, &plan_job.input(share, &root))?);
            launches.push(launch);
        }
        t.finish_into(&phases, launches[0].run_dir.display().to_string());
        let run_id = launches[0].run.id.clone();
        let run_dir = launches[0].run_dir.clone();
        let worker_ids: Vec<String> = if launches.len() > 1 {
            launches.iter().map(|l| l.run.id.clone()).collect()
        } else {
            Vec::new()
        };

        let suites = match run_suites(&engine, &launches, &jobs, reporter, &phases).await {
            Ok(s) => s,
            Err(failure) => {
                // The runs are gone already (guarded removed them). Record how it ended.
                record.outcome = if failure.exit == Exit::Interrupted {
                    Outcome::Aborted
                } else {
                    Outcome::Infra
                };
                record.finished_at = Timestamp::now();
                let ledger_note = record_run(&root, &record);
                reporter.event(&Event::Note {
                    message: format!(
                        "run {run_id} recorded as {}{ledger_note}; logs in {}",
                        record.outcome.as_str(),
                        launches
                            .iter()
                            .map(|l| l.logs_dir.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                return Err(failure);
            }
        };

        let (finished, parity) = finish_all(
            &engine,
            &launches,
            suites,
            req.keep,
            reporter,
            &phases,
            || parity_of(config, &package, reporter),
        )
        .await?;
        let Finished {
            images,
            kept,
            collected,
            exit_code,
        } = finished;
        let judged = judge(
            exit_code,
            collected.suite.as_ref(),
            &collected.session,
            &record.selection,
        );
        record.outcome = judged.outcome;
        record.selection = judged.selection.clone().unwrap_or(record.selection.clone());
        if req.no_tls {
            // Plain HTTP is not what production serves (and TLS-only tests skip): such a run
            // never counts as a complete one for the gate.
            record.selection = Selection::Filtered {
                expr: format!("--no-tls ({})", record.selection),
            };
        }
        let counts = collected
            .suite
            .as_ref()
            .map(|s| s.counts())
            .unwrap_or_default();
        record.passed = counts.passed;
        record.failed = counts.failed;
        record.errors = counts.errors;
        record.skipped = counts.skipped;
        record.image_ids = images.clone();
        record.browser_version = collected.browser.clone();
        let report_path = run_dir.join("report.html");
        record.report_path = Some(report_path.display().to_string());
        record.finished_at = Timestamp::now();

        let html = report::render(&report::ReportData {
            run_id: &run_id,
            outcome: judged.outcome,
            verdict: judged.verdict.clone(),
            started_at: started_at.rfc3339(),
            elapsed: start.elapsed(),
            selection: &record.selection,
            with_mocks: req.with_mocks,
            tls: !req.no_tls,
            package_zip: &package.zip,
            package_sha256: &package.sha256,
            build_id: &package.build_id,
            code_fingerprint: &package.fingerprints.code,
            schema_fingerprint: package.fingerprints.schema.as_deref(),
            input_fingerprint: &package.fingerprints.input,
            git_commit: git.commit.as_deref(),
            dirty: git.dirty,
            suite: collected.suite.as_ref(),
            attachments: &collected.attachments,
            page_screenshots: &collected.page_screenshots,
            written: &collected.written.files,
            routes: &collected.routes,
            parity: parity.as_ref().map_err(|e| e.clone()),
            images: &images,
            browser: collected.browser.as_deref(),
            phases: &phases.list(),
            run_dir: &run_dir,
        });
        crate::fsutil::write_private(&report_path, html.as_bytes())?;
        if collected.wrote_into_vendor_cache {
            reporter.event(&Event::Warning {
                message: format!(
                    "a failure may be the test run's own: {}",
                    stack::WRITES_INTO_CACHE_HINT
                ),
            });
        }
        let ledger_id = match crate::gatekeeper::open_ledger(&root).and_then(|mut l| {
            let id = l.record_run(&record).map_err(Failure::from)?;
            Ok((l, id))
        }) {
            Ok((mut l, id)) => {
                // The run's tests and routes for the history page, then the page itself: both
                // are extras, so a failure is a warning and the run stands as recorded.
                let details = crate::ledger::RunDetails {
                    tests: collected
                        .suite
                        .as_ref()
                        .map(|s| s.ledger_rows())
                        .unwrap_or_default(),
                    routes: collected.routes.iter().map(|r| r.ledger_row()).collect(),
                };
                let refreshed = l
                    .record_run_details(id, &details)
                    .map_err(Failure::from)
                    .and_then(|()| crate::history::refresh_with(&l, &root));
                if let Err(e) = refreshed {
                    reporter.event(&Event::Warning {
                        message: format!(
                            "the run history (.harness/history.html) was not updated: {e}"
                        ),
                    });
                }
                Some(id)
            }
            Err(e) => {
                reporter.event(&Event::Warning {
                    message: format!("the run could not be recorded in the ledger: {e}"),
                });
                None
            }
        };
        Ok(TestOutcome {
            run_id,
            run_dir: run_dir.clone(),
            outcome: judged.outcome.as_str(),
            exit: judged.exit,
            exit_code: judged.exit.code(),
            verdict: judged.verdict,
            counts,
            selection: record.selection.to_string(),
            files: selected.files.len(),
            report: Some(report_path),
            junit: collected.junit,
            ledger_run: ledger_id,
            parity: match &parity {
                Ok(p) if p.is_clean() => "clean".into(),
                Ok(p) => format!("{} difference(s) not allowed", p.violations().count()),
                Err(e) => format!("not compared: {e}"),
            },
            kept,
            pytest_seconds: collected.suite.as_ref().map_or(0.0, |s| s.seconds),
            elapsed_seconds: start.elapsed().as_secs_f64(),
            phases: phases
                .list()
                .into_iter()
                .map(|(p, d)| (p.to_string(), d.as_secs_f64()))
                .collect(),
            workers: worker_ids,
        })
    })
}

/// Runs every worker's suite side by side (one, without `--workers`). When one fails, the others
/// are stopped and removed, and its error is the run's; a signal stops them all.
async fn run_suites(
    engine: &stack::Engine,
    launches: &[stack::Launch],
    jobs: &[job::Job],
    reporter: &dyn Reporter,
    phases: &Timings,
) -> Result<Vec<SuiteRun>, Failure> {
    if launches.len() == 1 {
        let one = run_suite(
            engine,
            &launches[0],
            &jobs[0],
            reporter,
            phases,
            None,
            std::future::pending(),
        )
        .await?;
        return Ok(vec![one]);
    }
    // The first worker to fail: its error is the run's, and it stops the others.
    let (stop, stopped) = tokio::sync::watch::channel(None::<usize>);
    let timings: Vec<Timings> = launches.iter().map(|_| Timings::default()).collect();
    let runs =
        launches
            .iter()
            .zip(jobs)
            .zip(&timings)
            .enumerate()
            .map(|(i, ((launch, job), t))| {
                let mut stopped = stopped.clone();
                let stop = &stop;
                async move {
                    let label = format!("w{}", i + 1);
                    let r = run_suite(engine, launch, job, reporter, t, Some(&label), async move {
                        let _ = stopped.wait_for(Option::is_some).await;
                    })
                    .await;
                    if r.is_err() {
                        stop.send_if_modified(|first| {
                            first.is_none() && first.replace(i).is_none()
                        });
                    }
                    r
                }
            });
    let results = futures_util::future::join_all(runs).await;
    for (name, d) in workers::slowest_phases(&timings) {
        phases.keep(name, d);
    }
    if results.iter().all(Result::is_ok) {
        return Ok(results.into_iter().flatten().collect());
    }
    // A worker that finished before another failed still has its stack: remove it too.
    let first = stop.borrow().expect("a worker failed");
    let (mut cause, mut interrupted) = (None, None);
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(done) => {
                if let Err(e) = done.handle.down().await {
                    reporter.event(&Event::Warning {
                        message: format!("cleanup of a finished worker failed: {e}"),
                    });
                }
            }
            // An interrupt wins over the first failure.
            Err(e) if e.exit == Exit::Interrupted => interrupted = Some(e),
            Err(e) if i == first => cause = Some(e),
            Err(_) => {}
        }
    }
    Err(interrupted
        .or(cause)
        .expect("the first failed worker has an error"))
}

/// Starts the stack with the job, lets pytest go once every service is ready, and follows it
/// to its end. Guarded: an error, a signal or `stop` removes the run before this returns.
/// With a `label`, the suite's output lines carry it.
async fn run_suite(
    engine: &stack::Engine,
    launch: &stack::Launch,
    job: &job::Job,
    reporter: &dyn Reporter,
    phases: &Timings,
    label: Option<&str>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<SuiteRun, Failure> {
    let prefixer = label.map(workers::Prefixer::new);
    let work = async {
        let t = Instant::now();
        let handle = stack::start_stack(engine, launch, reporter).await?;
        stack::identify(&handle, launch, reporter).await?;
        // start_stack reported the stack's own phase; the run's list counts the identity
        // check too.
        phases.keep("stack", t.elapsed());
        let t = Phase::start(reporter, "suite");
        reporter.event(&Event::Note {
            message: format!(
                "{}pytest {}",
                label.map(|l| format!("[{l}] ")).unwrap_or_default(),
                job.args_display()
            ),
        });
        let exited = std::sync::Mutex::new((job::ExitLine::default(), None));
        let forward = |bytes: &[u8]| {
            let mut exited = exited.lock().expect("exit line lock");
            if exited.1.is_none()
                && let Some(code) = exited.0.feed(bytes)
                && !launch.run.keep
            {
                exited.1 = Some(early_teardown(engine, &handle, &launch.logs_dir, code));
            }
            drop(exited);
            let bytes = match &prefixer {
                Some(p) => p.feed(bytes),
                None => bytes.to_vec(),
            };
            if !bytes.is_empty() {
                reporter.event(&Event::SuiteOutput { bytes })
            }
        };
        let svc = handle
            .service(job::SERVICE)
            .ok_or_else(|| stack::StackError::Plan("the playwright job did not start".into()))?;
        let images = tokio::spawn({
            let (engine, id) = (engine.clone(), launch.run.id.clone());
            async move { engine.image_ids(&id).await.unwrap_or_default() }
        });
        // Through the Engine API, as the job's /report is no host folder.
        engine
            .put_file(svc, &format!("/report/{}", job::GO_FILE), b"")
            .await?;
        let exit_code = engine.follow_job(svc, suite_timeout(), &forward).await?;
        if let Some(rest) = prefixer.as_ref().map(workers::Prefixer::flush)
            && !rest.is_empty()
        {
            reporter.event(&Event::SuiteOutput { bytes: rest });
        }
        t.finish_into(phases, format!("pytest exited {exit_code}"));
        let images = images.await.unwrap_or_default();
        let early_teardown = exited.into_inner().expect("exit line lock").1;
        Ok(SuiteRun {
            exit_code,
            handle,
            images,
            early_teardown,
        })
    };
    stack::guarded(engine, &launch.run, &launch.logs_dir, reporter, async {
        tokio::select! {
            r = work => r,
            _ = stop => Err(stack::StackError::Stopped),
        }
    })
    .await
}

/// What is left of a run once it is over.
struct Finished {
    images: BTreeMap<String, String>,
    kept: Option<Vec<ServiceUrl>>,
    collected: job::Collected,
    /// pytest's exit code (the workers' as one).
    exit_code: i64,
}

/// Finishes every worker's run side by side (`finish`), `also` once, and merges the workers'
/// results into the first one's folder.
async fn finish_all<T>(
    engine: &stack::Engine,
    launches: &[stack::Launch],
    suites: Vec<SuiteRun>,
    keep: bool,
    reporter: &dyn Reporter,
    phases: &Timings,
    also: impl FnOnce() -> T,
) -> Result<(Finished, T), Failure> {
    let mut suites = suites.into_iter();
    let first = suites.next().expect("one suite per launch");
    // The other workers' phases are the same steps at the same time: not counted again.
    let scratch = Timings::default();
    let rest = futures_util::future::join_all(launches[1..].iter().zip(suites).map(|(l, s)| {
        let scratch = &scratch;
        async move {
            finish(engine, l, s, keep, reporter, scratch, || ())
                .await
                .map(|(f, ())| (l, f))
        }
    }));
    let (first, rest) = tokio::join!(
        finish(engine, &launches[0], first, keep, reporter, phases, also),
        rest
    );
    let (finished, extra) = first?;
    if launches.len() == 1 {
        return Ok((finished, extra));
    }
    let part = |l: &stack::Launch, f: Finished| workers::Part {
        run_id: l.run.id.clone(),
        run_dir: l.run_dir.clone(),
        collected: f.collected,
        exit_code: f.exit_code,
    };
    let (images, kept) = (finished.images.clone(), finished.kept.clone());
    let mut parts = vec![part(&launches[0], finished)];
    for r in rest {
        let (l, f) = r?;
        parts.push(part(l, f));
    }
    let codes: Vec<i64> = parts.iter().map(|p| p.exit_code).collect();
    let collected = tokio::task::block_in_place(|| workers::merge(parts))?;
    Ok((
        Finished {
            images,
            kept,
            collected,
            exit_code: workers::exit_code(&codes),
        },
        extra,
    ))
}

/// Reads the image ids while the containers exist, then tears the run down (unless `keep`) in
/// the background while the results are collected and `also` runs (parity, a check).
async fn finish<T>(
    engine: &stack::Engine,
    launch: &stack::Launch,
    suite: SuiteRun,
    keep: bool,
    reporter: &dyn Reporter,
    phases: &Timings,
    also: impl FnOnce() -> T,
) -> Result<(Finished, T), Failure> {
    let SuiteRun {
        exit_code,
        handle,
        images,
        early_teardown,
    } = suite;
    let run_id = launch.run.id.clone();
    // What the job and the proxy wrote comes back before the containers go; a failure still
    // lets the teardown run first.
    let t = Phase::start(reporter, "collect");
    let mut removals = Vec::new();
    let mut evidence = None;
    match early_teardown {
        Some(early) => {
            evidence = Some(early.evidence);
            removals.push(early.removal);
        }
        None => {
            if exit_code != 0 {
                // Before anything goes: the app's output is the failure's evidence.
                save_timed_app_log(engine, handle.service("app"), &launch.logs_dir).await;
            }
            if !keep {
                removals.push(engine.remove_services_soon(&handle, |s| s.outputs.is_empty()));
            }
        }
    }
    let t_down = Phase::start(reporter, "teardown");
    // The services with nothing to bring back go while the others' folders are downloaded,
    // each of those as soon as its folders are back; the network and volumes last.
    let backs = handle
        .services
        .values()
        .filter(|s| !s.outputs.is_empty())
        .map(|svc| async {
            let r = engine.read_back(svc).await;
            let removal =
                (!keep).then(|| engine.remove_services_soon(&handle, |s| s.name == svc.name));
            (r, removal)
        });
    let mut read_back = Ok(());
    for (r, removal) in futures_util::future::join_all(backs).await {
        read_back = read_back.and(r);
        removals.extend(removal);
    }
    let kept = keep.then(|| stack::urls_of(&handle, !launch.no_tls));
    let teardown = (!keep).then(|| {
        tokio::spawn(async move {
            // A failed removal is retried by `down`, which removes whatever is left by label.
            for task in removals {
                let _ = task.await;
            }
            handle.down().await
        })
    });
    if let Some(saved) = evidence {
        saved.await;
    }
    let collected = tokio::task::block_in_place(|| job::collect(&launch.run_dir))?;
    let extra = tokio::task::block_in_place(also);
    t.finish_into(
        phases,
        format!(
            "{} cases",
            collected.suite.as_ref().map_or(0, |s| s.cases.len())
        ),
    );
    match teardown {
        None => t_down.finish_into(phases, "kept (--keep)"),
        Some(task) => {
            let removed = tokio::select! {
                r = task => match r {
                    Ok(r) => r.map_err(Failure::from),
                    Err(e) => Err(Failure::new(Exit::Environment, format!("teardown failed: {e}"))),
                },
                _ = stack::interrupted() => {
                    // Ctrl-C during teardown: finish removing, then stop.
                    let _ = engine.remove_run(&run_id, Some(&launch.logs_dir)).await;
                    Err(Failure::new(Exit::Interrupted, "interrupted during teardown; the run was removed"))
                }
            };
            removed?;
            t_down.finish_into(phases, "run removed");
        }
    }
    read_back?;
    Ok((
        Finished {
            images,
            kept,
            collected,
            exit_code,
        },
        extra,
    ))
}

/// Once pytest has exited (the job's last step, copying what the run wrote, needs no other
/// service): after a red run the app's evidence, then the services with nothing to bring back
/// go, while the job's container is still finishing.
fn early_teardown(
    engine: &stack::Engine,
    handle: &stack::StackHandle,
    logs_dir: &Path,
    pytest_exit: i64,
) -> EarlyTeardown {
    let (evidence_engine, app, logs_dir) = (
        engine.clone(),
        handle.service("app").cloned(),
        logs_dir.to_path_buf(),
    );
    // Never the job itself, even where its /report is a host folder (HARNESS_BIND_MOUNTS=1) and
    // so no output to bring back: it is still running, and its exit code is the run's result.
    let done = |s: &stack::RunningService| s.outputs.is_empty() && s.name != job::SERVICE;
    let evidence = futures_util::FutureExt::shared(futures_util::FutureExt::boxed(async move {
        if pytest_exit != 0 {
            save_timed_app_log(&evidence_engine, app.as_ref(), &logs_dir).await;
        }
    }));
    EarlyTeardown {
        removal: engine.remove_services_soon_after(handle, done, evidence.clone()),
        evidence,
    }
}

/// After a red run, the app's output with the engine's time per line, so the report can put
/// each failed test's lines beside it (`evidence`). Best effort: without it the report only
/// lacks those lines.
async fn save_timed_app_log(
    engine: &stack::Engine,
    app: Option<&stack::RunningService>,
    logs_dir: &Path,
) {
    let Some(app) = app else {
        return;
    };
    if let Ok(text) = engine.timed_log(app).await {
        let _ = crate::fsutil::write_private(&logs_dir.join(job::APP_TIMED_LOG), text.as_bytes());
    }
    // Apps that log to a file in their own folder (Python's FileHandler, as the example
    // does) keep their tracebacks out of Passenger's output: those files come too, their
    // last MiB each.
    let vendor = format!("{}/vendor/*", stack::APP_ROOT);
    let find = [
        "find",
        stack::APP_ROOT,
        "-maxdepth",
        "2",
        "-type",
        "f",
        "-name",
        "*.log",
        "-not",
        "-path",
        &vendor,
    ];
    let Ok((0, listing)) = engine.exec(&app.container_id, None, &find).await else {
        return;
    };
    let dir = logs_dir.join(job::APP_LOG_FILES);
    let prefix = format!("{}/", stack::APP_ROOT);
    let files = listing
        .lines()
        .filter_map(|path| Some((path, path.strip_prefix(&prefix)?)))
        .take(10);
    for (path, rel) in files {
        let name = rel.replace('/', "__");
        if let Ok((0, text)) = engine
            .exec(&app.container_id, None, &["tail", "-c", "1048576", path])
            .await
            && crate::fsutil::create_private_dir(&dir).is_ok()
        {
            let _ = crate::fsutil::write_private(&dir.join(name), text.as_bytes());
        }
    }
}

/// The local package: reused when `--skip-build` and it is fresh, built otherwise. The bool
/// says whether it was reused.
fn local_package(
    config: &Config,
    skip_build: bool,
    reseed: bool,
    reporter: &dyn Reporter,
) -> Result<(PackageManifest, bool), Failure> {
    if skip_build {
        if let Some(m) = crate::package::fresh::reusable(config, Target::Local)? {
            return Ok((m, true));
        }
        reporter.event(&Event::Note {
            message: "--skip-build: the local package is missing or stale; building it".into(),
        });
    }
    let built = crate::gatekeeper::build(
        config,
        &crate::package::BuildRequest {
            reseed,
            ..crate::package::BuildRequest::standard(Target::Local)
        },
        reporter,
    )?;
    Ok((built, false))
}

/// Parity of the run's package with the webhosting package of the same sources (built when
/// missing or stale; cheap with a warm wheel cache). An error says why it was not compared.
fn parity_of(
    config: &Config,
    local: &PackageManifest,
    reporter: &dyn Reporter,
) -> Result<crate::parity::ParityReport, String> {
    let web = match crate::package::fresh::reusable(config, Target::Webhosting) {
        Ok(Some(m)) => m.zip,
        Ok(None) => {
            crate::gatekeeper::build(
                config,
                &crate::package::BuildRequest::standard(Target::Webhosting),
                reporter,
            )
            .map_err(|e| format!("the webhosting package could not be built: {e}"))?
            .zip
        }
        Err(e) => return Err(e.to_string()),
    };
    crate::parity::check_packages(&local.zip, &web, config).map_err(|e| e.to_string())
}

/// The verdict on a finished suite.
struct Judged {
    outcome: Outcome,
    exit: Exit,
    verdict: String,
    /// A narrower selection than requested: tests deselected (`-m`, `-k` in the user's
    /// arguments, `--deselect`, `--lf`, the mocks marker), files ignored, or a run stopped
    /// early (`-x`).
    selection: Option<Selection>,
}

/// What the plugin saw that makes a run less than the requested selection; empty when the run
/// ran everything it was asked to.
fn narrowing(session: &job::Session) -> Vec<String> {
    let mut why = Vec::new();
    if session.deselected_by_mocks > 0 {
        why.push(format!(
            "not mocks ({} test(s) need --with-mocks)",
            session.deselected_by_mocks
        ));
    }
    let others = session
        .deselected
        .saturating_sub(session.deselected_by_mocks);
    if others > 0 {
        why.push(format!("{others} test(s) deselected"));
    }
    why.extend(session.narrowing.iter().cloned());
    // Every collected test must have run; `-x` or `--maxfail` can stop a run before.
    if session.ran < session.collected {
        why.push(format!(
            "stopped early: {} of {} collected test(s) ran",
            session.ran, session.collected
        ));
    }
    why
}

/// The requested selection, narrowed by what the run left out.
fn narrowed(requested: &Selection, why: &[String]) -> Option<Selection> {
    if why.is_empty() {
        return None;
    }
    let why = why.join("; ");
    Some(Selection::Filtered {
        expr: match requested {
            Selection::Full => why,
            Selection::Filtered { expr } => format!("{expr}; {why}"),
            Selection::Shard { index, total } => format!("--shard {index}/{total}; {why}"),
        },
    })
}

/// pytest's exit code and junit.xml → outcome and exit code. pytest: 0 passed, 1 failed,
/// 2 interrupted (collection errors), 3 internal error, 4 usage error, 5 no tests collected; 90
/// is the runner's own "could not prepare".
fn judge(
    code: i64,
    suite: Option<&SuiteResult>,
    session: &job::Session,
    requested: &Selection,
) -> Judged {
    let counts = suite.map(|s| s.counts()).unwrap_or_default();
    let total = counts.total();
    let selection = narrowed(requested, &narrowing(session));
    let (outcome, exit, verdict) = match code {
        0 if counts.failed + counts.errors == 0 && total > 0 => (
            Outcome::Green,
            Exit::Success,
            format!(
                "{} passed{}",
                counts.passed,
                if counts.skipped > 0 {
                    format!(", {} skipped", counts.skipped)
                } else {
                    String::new()
                }
            ),
        ),
        0 | 1 => (
            Outcome::Red,
            Exit::Failed,
            format!(
                "{} failed, {} errors, {} passed, {} skipped",
                counts.failed, counts.errors, counts.passed, counts.skipped
            ),
        ),
        5 => (
            Outcome::Red,
            Exit::Failed,
            "pytest collected no tests: the selection (-k, paths, markers) matched nothing".into(),
        ),
        4 => (
            Outcome::Infra,
            Exit::BadInput,
            "pytest refused its arguments (usage error; see its output above)".into(),
        ),
        90 => (
            Outcome::Infra,
            Exit::Environment,
            "the test job could not be prepared (venv, NSS database); see its output above".into(),
        ),
        // pytest's "interrupted": in the job nobody presses Ctrl-C (harness's own interrupt
        // removes the container), so it means errors while collecting, e.g. an ImportError.
        2 => (
            Outcome::Red,
            Exit::Failed,
            format!(
                "pytest stopped on errors while collecting the tests ({} error(s); see its output above)",
                counts.errors
            ),
        ),
        other => (
            Outcome::Infra,
            Exit::Environment,
            format!("pytest ended with exit code {other} (internal error or killed)"),
        ),
    };
    Judged {
        outcome,
        exit,
        verdict,
        selection,
    }
}

/// Records a run that ended early; returns a note for the message (the ledger id, or why not).
fn record_run(root: &Path, record: &RunRecord) -> String {
    match crate::gatekeeper::open_ledger(root).and_then(|mut l| {
        let id = l.record_run(record).map_err(Failure::from)?;
        // The history shows aborted and infra runs too; its refresh never fails the record.
        let _ = crate::history::refresh_with(&l, root);
        Ok(id)
    }) {
        Ok(id) => format!(" (ledger run {id})"),
        Err(e) => format!(" (not recorded: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(statuses: &[CaseStatus]) -> SuiteResult {
        SuiteResult {
            seconds: 1.0,
            cases: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| junit::CaseResult {
                    classname: "t".into(),
                    name: format!("test_{i}"),
                    seconds: 0.1,
                    status: *s,
                    message: None,
                    details: None,
                })
                .collect(),
        }
    }

    #[test]
    fn judge_maps_pytest_codes_to_outcomes_and_exits() {
        let s = job::Session::default();
        let full = Selection::Full;
        let judge = |code, suite: Option<&SuiteResult>| judge(code, suite, &s, &full);
        let green = suite(&[CaseStatus::Passed, CaseStatus::Skipped]);
        let j = judge(0, Some(&green));
        assert_eq!((j.outcome, j.exit), (Outcome::Green, Exit::Success));
        assert_eq!(j.verdict, "1 passed, 1 skipped");
        let red = suite(&[CaseStatus::Passed, CaseStatus::Failed]);
        assert_eq!(judge(1, Some(&red)).exit, Exit::Failed);
        // Exit 0 with a failure in junit (a plugin swallowed it) is still red.
        assert_eq!(judge(0, Some(&red)).outcome, Outcome::Red);
        // Exit 0 with no tests at all is not green.
        assert_eq!(judge(0, Some(&suite(&[]))).outcome, Outcome::Red);
        assert_eq!(judge(5, None).exit, Exit::Failed);
        assert_eq!(judge(4, None).exit, Exit::BadInput);
        assert_eq!(judge(90, None).outcome, Outcome::Infra);
        assert_eq!(judge(137, None).exit, Exit::Environment);
        // Collection errors: red, not an interrupt.
        assert_eq!(judge(2, None).exit, Exit::Failed);
        assert_eq!(judge(2, None).outcome, Outcome::Red);
    }

    #[test]
    fn a_run_that_left_anything_out_is_filtered_not_full() {
        let one = suite(&[CaseStatus::Passed]);
        let full = Selection::Full;
        let filtered =
            |s: &job::Session, requested: &Selection| match judge(0, Some(&one), s, requested)
                .selection
            {
                Some(Selection::Filtered { expr }) => Some(expr),
                None => None,
                other => panic!("{other:?}"),
            };
        let complete = job::Session {
            collected: 1,
            ran: 1,
            ..Default::default()
        };
        assert_eq!(filtered(&complete, &full), None);
        let mocks = job::Session {
            deselected: 3,
            deselected_by_mocks: 3,
            ..complete.clone()
        };
        assert_eq!(
            filtered(&mocks, &full).unwrap(),
            "not mocks (3 test(s) need --with-mocks)"
        );
        // `-- -m smoke` deselects: the run is green, but not complete.
        let marked = job::Session {
            deselected: 5,
            ..complete.clone()
        };
        let j = judge(0, Some(&one), &marked, &full);
        assert_eq!(j.outcome, Outcome::Green);
        assert_eq!(
            j.selection,
            Some(Selection::Filtered {
                expr: "5 test(s) deselected".into()
            })
        );
        let ignored = job::Session {
            narrowing: vec!["--ignore=ui_tests/legacy".into()],
            ..complete.clone()
        };
        assert_eq!(
            filtered(&ignored, &full).unwrap(),
            "--ignore=ui_tests/legacy"
        );
        // `-x` that stopped after a failure, or with every test run.
        let stopped = job::Session {
            collected: 4,
            ran: 1,
            ..Default::default()
        };
        assert_eq!(
            filtered(&stopped, &full).unwrap(),
            "stopped early: 1 of 4 collected test(s) ran"
        );
        // A shard stays a shard unless something was left out of it.
        let shard = Selection::Shard { index: 1, total: 2 };
        assert_eq!(filtered(&complete, &shard), None);
        assert_eq!(
            filtered(&marked, &shard).unwrap(),
            "--shard 1/2; 5 test(s) deselected"
        );
    }
}
