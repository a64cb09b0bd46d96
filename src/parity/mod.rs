//! Parity: the local and webhosting packages differ only in what is allowed to differ, and the
//! server holds what was deployed (`remote`).
//!
//! Everything is read from the zips' bytes: the file list and every sha256 are computed, and
//! MANIFEST.json is checked as a claim, so a file edited inside a zip is caught even when its
//! manifest was left alone. The comparison (`diff::compare`) is a pure function of two
//! [`PackageView`]s and the [`AllowList`](crate::model::allow::AllowList).
mod diff;
pub mod remote;
mod view;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use diff::{Difference, Kind, ParityReport, compare};
pub use view::{FileFact, Layout, PackageView};

use crate::config::Config;
use crate::error::{Exit, Failure};
use crate::events::{Event, Reporter};
use crate::model::target::Target;
use crate::package;

/// Reads both zips (in parallel: hashing dominates) and compares them under the config's
/// allow-list. This is what `harness test` calls for its package.
pub fn check_packages(
    local_zip: &Path,
    web_zip: &Path,
    config: &Config,
) -> Result<ParityReport, Failure> {
    let layout = Layout::from_config(config);
    let (l, w) = std::thread::scope(|s| {
        let l = s.spawn(|| PackageView::read(local_zip, &layout));
        let w = PackageView::read(web_zip, &layout);
        (l.join().expect("reader thread"), w)
    });
    Ok(compare(&l?, &w?, &config.parity.allow))
}

/// What `harness parity` found, with where the packages are.
#[derive(Debug, Serialize)]
pub struct ParityOutcome {
    pub local: PathBuf,
    pub webhosting: PathBuf,
    /// Targets rebuilt because their package was missing or stale.
    pub rebuilt: Vec<String>,
    pub clean: bool,
    #[serde(flatten)]
    pub report: ParityReport,
}

/// `harness parity`: makes sure both packages are fresh, then compares them.
pub fn run(config: &Config, reporter: &dyn Reporter) -> Result<ParityOutcome, Failure> {
    let sources = crate::events::phase(reporter, "freshness", || {
        let s = package::stage::walk(config)?;
        let n = s.len();
        Ok::<_, Failure>((s, format!("{n} source files")))
    })?;
    let git = crate::git::facts(&config.root);
    let mut rebuilt = Vec::new();
    let mut zips = Vec::new();
    for target in Target::ALL {
        let zip = package::default_output(config, target);
        let want = package::fingerprint::input(config, target, false, &sources, &git);
        match package::fresh::staleness(&zip, &want) {
            None => reporter.event(&Event::Note {
                message: format!("{target}: {} is up to date", zip.display()),
            }),
            Some(why) => {
                reporter.event(&Event::Note {
                    message: format!("{target}: {why}; building it"),
                });
                crate::gatekeeper::build(
                    config,
                    &package::BuildRequest {
                        target,
                        seed_demo: false,
                        rotate_secrets: false,
                        reseed: false,
                        output: None,
                    },
                    reporter,
                )?;
                rebuilt.push(target.to_string());
            }
        }
        zips.push(zip);
    }
    let report = crate::events::phase(reporter, "compare", || {
        let r = check_packages(&zips[0], &zips[1], config)?;
        let bad = r.violations().count();
        let detail = format!(
            "{} + {} files, {} differences ({bad} not allowed)",
            r.local_files,
            r.webhosting_files,
            r.differences.len()
        );
        Ok::<_, Failure>((r, detail))
    })?;
    Ok(ParityOutcome {
        local: zips[0].clone(),
        webhosting: zips[1].clone(),
        rebuilt,
        clean: report.is_clean(),
        report,
    })
}

/// The readable table `harness parity` prints.
pub fn table(outcome: &ParityOutcome) -> String {
    use std::fmt::Write;
    let r = &outcome.report;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "local       {} ({} files)\nwebhosting  {} ({} files)",
        outcome.local.display(),
        r.local_files,
        outcome.webhosting.display(),
        r.webhosting_files
    );
    if !r.differences.is_empty() {
        let rows: Vec<[String; 5]> = r
            .differences
            .iter()
            .map(|d| {
                [
                    d.kind.label().to_string(),
                    d.subject(),
                    cell(d.local.as_deref()),
                    cell(d.webhosting.as_deref()),
                    match &d.allowed_by {
                        Some(rule) => format!("allowed ({rule})"),
                        None => "DIFFERS".to_string(),
                    },
                ]
            })
            .collect();
        let head = ["KIND", "WHAT", "LOCAL", "WEBHOSTING", "STATUS"];
        let mut widths = head.map(str::len);
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        out.push('\n');
        for row in std::iter::once(head.map(str::to_string)).chain(rows) {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
    }
    let bad = r.violations().count();
    let allowed = r.differences.len() - bad;
    let _ = writeln!(
        out,
        "\n{}",
        if bad == 0 {
            format!("parity holds: {allowed} allowed differences, none other")
        } else {
            format!("parity FAILS: {bad} differences not allowed ({allowed} allowed)")
        }
    );
    out
}

/// Long values (SQL of a trigger, say) are cut for the table; `--json` has them whole.
fn cell(v: Option<&str>) -> String {
    const MAX: usize = 48;
    match v {
        None => "(absent)".into(),
        Some(s) if s.chars().count() > MAX => {
            format!("{}…", s.chars().take(MAX - 1).collect::<String>())
        }
        Some(s) => s.to_string(),
    }
}

/// The error for an unreadable package (used by callers that have a path but no zip).
pub fn missing_package(target: Target, zip: &Path) -> Failure {
    Failure::new(
        Exit::BadInput,
        format!("no {target} package at {}", zip.display()),
    )
    .hint(format!("build it with `harness build --target {target}`"))
}

#[cfg(test)]
mod tests;
