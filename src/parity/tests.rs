//! The comparison on synthetic zips: one package is built, a twin is derived with one change, and
//! the report must name exactly that change.
use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::model::allow::AllowList;
use crate::package::archive::{DeterministicZip, FileEntry, pretty_json};

struct Pkg {
    files: BTreeMap<String, Vec<u8>>,
    build_info: serde_json::Value,
    /// Manifest entries to use instead of the true ones (for tampering).
    manifest_override: BTreeMap<String, Vec<u8>>,
    drop_from_manifest: Vec<String>,
    /// What the build_info.json copy holds instead of build_info.json's bytes.
    copy_override: Option<Vec<u8>>,
}

fn db(sql: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch(sql).unwrap();
    drop(c);
    std::fs::read(p).unwrap()
}

const SCHEMA: &str = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);
CREATE INDEX users_email ON users(email);
CREATE TRIGGER users_touch AFTER INSERT ON users BEGIN SELECT 1; END;";

impl Pkg {
    fn new(target: &str) -> Pkg {
        let mut files = BTreeMap::new();
        files.insert(
            "passenger_wsgi.py".into(),
            b"from app import app as application\n".to_vec(),
        );
        files.insert("src/app/__init__.py".into(), b"app = object()\n".to_vec());
        files.insert(
            "vendor/flask/__init__.py".into(),
            b"__version__ = '3.0.3'\n".to_vec(),
        );
        files.insert(
            "vendor/flask-3.0.3.dist-info/METADATA".into(),
            b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\n\nbody\n".to_vec(),
        );
        files.insert(
            "vendor.lock".into(),
            pretty_json(&json!({"wheels": [{"name": "flask", "version": "3.0.3",
                "filename": "flask-3.0.3-py3-none-any.whl", "sha256": "ab".repeat(32)}]})),
        );
        files.insert(
            "app.db".into(),
            db(&format!(
                "{SCHEMA} INSERT INTO settings VALUES ('target', '{target}');"
            )),
        );
        files.insert(
            "DEPLOY_README.md".into(),
            format!("# Deploy package ID-{target}\nBuilt for target `{target}` at 2026-01-01T00:00:00Z.\nUse `harness deploy {target}`.\n").into_bytes(),
        );
        Pkg {
            files,
            build_info: json!({
                "build_id": format!("ID-{target}"), "built_at": "2026-01-01T00:00:00Z", "target": target,
                "git_commit": "abc", "pythons": ["3.11"], "platforms": ["manylinux2014_x86_64", "any"],
                "fingerprints": {"code": "c0de", "schema": "5c4e"}, "harness_version": "0.1.0"
            }),
            manifest_override: BTreeMap::new(),
            drop_from_manifest: Vec::new(),
            copy_override: None,
        }
    }

    fn view(&self) -> PackageView {
        let mut all = self.files.clone();
        all.insert("build_info.json".into(), pretty_json(&self.build_info));
        all.insert(
            "src/app/build_info.json".into(),
            self.copy_override
                .clone()
                .unwrap_or_else(|| pretty_json(&self.build_info)),
        );
        let mut entries: Vec<FileEntry> = all
            .iter()
            .filter(|(p, _)| !self.drop_from_manifest.contains(p))
            .map(|(p, b)| {
                FileEntry::of(p.clone(), self.manifest_override.get(p).unwrap_or(b), 0o644)
            })
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        all.insert(
            "MANIFEST.json".into(),
            pretty_json(&json!({ "files": entries })),
        );
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut z = DeterministicZip::new(std::fs::File::create(tmp.path()).unwrap());
        for (p, b) in &all {
            z.add_bytes(p, b, 0o644).unwrap();
        }
        z.finish().unwrap();
        PackageView::read(tmp.path(), &layout()).unwrap()
    }
}

fn layout() -> Layout {
    Layout {
        entry_point: "passenger_wsgi.py".into(),
        database: Some("app.db".into()),
        build_info_copies: vec!["src/app/build_info.json".into()],
    }
}

fn report(local: &Pkg, web: &Pkg) -> ParityReport {
    compare(&local.view(), &web.view(), &AllowList::default())
}

fn violations(r: &ParityReport) -> Vec<(Kind, String)> {
    r.violations().map(|d| (d.kind, d.subject())).collect()
}

#[test]
fn twins_differ_only_in_allowed_ways() {
    let r = report(&Pkg::new("local"), &Pkg::new("webhosting"));
    assert!(r.is_clean(), "{:#?}", r.differences);
    let allowed: Vec<(Kind, String)> = r
        .differences
        .iter()
        .map(|d| (d.kind, d.subject()))
        .collect();
    assert_eq!(
        allowed,
        vec![
            (Kind::File, "DEPLOY_README.md".to_string()),
            (Kind::BuildInfo, "build_info.json:build_id".to_string()),
            (Kind::BuildInfo, "build_info.json:target".to_string()),
            (Kind::DatabaseContent, "app.db".to_string()),
        ]
    );
    assert_eq!(r.local_files, 10);
}

#[test]
fn identical_packages_have_no_differences() {
    let r = report(&Pkg::new("local"), &Pkg::new("local"));
    assert!(r.differences.is_empty(), "{:#?}", r.differences);
}

#[test]
fn a_file_edited_inside_one_zip_is_caught_although_its_manifest_was_left_alone() {
    let local = Pkg::new("local");
    let mut web = Pkg::new("webhosting");
    let original = web.files["vendor/flask/__init__.py"].clone();
    web.files.insert(
        "vendor/flask/__init__.py".into(),
        b"__version__ = 'evil'\n".to_vec(),
    );
    web.manifest_override
        .insert("vendor/flask/__init__.py".into(), original);
    let r = report(&local, &web);
    let v = violations(&r);
    assert_eq!(
        v,
        vec![
            (Kind::Manifest, "vendor/flask/__init__.py".to_string()),
            (Kind::File, "vendor/flask/__init__.py".to_string()),
        ]
    );
    let m = r.violations().next().unwrap();
    assert!(
        m.local.is_none()
            && m.webhosting
                .as_deref()
                .unwrap()
                .contains("MANIFEST.json says")
    );
}

#[test]
fn manifest_gaps_are_integrity_findings_on_their_side() {
    let mut local = Pkg::new("local");
    local.drop_from_manifest.push("src/app/__init__.py".into());
    let r = report(&local, &Pkg::new("webhosting"));
    let d: Vec<_> = r.violations().collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, Kind::Manifest);
    assert!(
        d[0].local
            .as_deref()
            .unwrap()
            .contains("not in MANIFEST.json")
    );
    // A manifest entry whose file is gone.
    let mut web = Pkg::new("webhosting");
    web.files.remove("src/app/__init__.py");
    web.manifest_override.clear();
    let mut view = web.view();
    view.manifest.as_mut().unwrap().insert(
        "src/app/__init__.py".into(),
        FileEntry::of("src/app/__init__.py".into(), b"x", 0o644),
    );
    let r = compare(&Pkg::new("local").view(), &view, &AllowList::default());
    let v: Vec<_> = r
        .violations()
        .map(|d| (d.kind, d.subject(), d.webhosting.clone()))
        .collect();
    assert!(
        v.contains(&(
            Kind::Manifest,
            "src/app/__init__.py".into(),
            Some("in MANIFEST.json, not in the zip".into())
        )),
        "{v:#?}"
    );
    assert!(
        v.iter()
            .any(|(k, s, _)| *k == Kind::File && s == "src/app/__init__.py"),
        "{v:#?}"
    );
}

#[test]
fn missing_manifest_is_a_finding() {
    let view = Pkg::new("local").view();
    let mut broken = view.clone();
    broken.manifest = Err("the package has no MANIFEST.json".into());
    let r = compare(&view, &broken, &AllowList::default());
    assert_eq!(
        violations(&r),
        vec![(Kind::Manifest, "MANIFEST.json".to_string())]
    );
}

#[test]
fn a_column_seeded_for_one_target_names_table_and_column() {
    let mut local = Pkg::new("local");
    local.files.insert(
        "app.db".into(),
        db(&format!(
            "{SCHEMA} ALTER TABLE settings ADD COLUMN debug INTEGER DEFAULT 0;"
        )),
    );
    let r = report(&local, &Pkg::new("webhosting"));
    let v: Vec<_> = r.violations().collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, Kind::Column);
    assert_eq!(v[0].table.as_deref(), Some("settings"));
    assert_eq!(v[0].column.as_deref(), Some("debug"));
    assert_eq!(v[0].local.as_deref(), Some("#3 INTEGER DEFAULT 0"));
    assert_eq!(v[0].webhosting, None);
}

#[test]
fn tables_indexes_triggers_and_views_are_compared() {
    let mut web = Pkg::new("webhosting");
    let changed = SCHEMA
        .replace(
            "CREATE INDEX users_email ON users(email);",
            "CREATE INDEX users_email ON users(id, email);",
        )
        .replace(
            "SELECT 1; END;",
            "SELECT 2; END; CREATE TABLE extra (x); CREATE VIEW v AS SELECT 1;",
        );
    web.files.insert("app.db".into(), db(&changed));
    let r = report(&Pkg::new("local"), &web);
    let v = violations(&r);
    assert_eq!(
        v,
        vec![
            (Kind::Table, "extra".to_string()),
            (Kind::Index, "users: users_email".to_string()),
            (Kind::Trigger, "users_touch".to_string()),
            (Kind::View, "v".to_string()),
        ],
    );
    // Column type, NOT NULL and order changes count too.
    let mut web = Pkg::new("webhosting");
    web.files.insert(
        "app.db".into(),
        db(&SCHEMA.replace("email TEXT NOT NULL UNIQUE", "email TEXT UNIQUE")),
    );
    let v = violations(&report(&Pkg::new("local"), &web));
    assert_eq!(v, vec![(Kind::Column, "users.email".to_string())]);
}

#[test]
fn an_unreadable_database_is_reported() {
    let mut web = Pkg::new("webhosting");
    web.files.insert(
        "app.db".into(),
        b"not sqlite at all, just text of some length".repeat(100),
    );
    let v = violations(&report(&Pkg::new("local"), &web));
    assert_eq!(v, vec![(Kind::Database, "app.db".to_string())]);
}

#[test]
fn python_and_platform_differences_are_reported() {
    let mut web = Pkg::new("webhosting");
    web.build_info["pythons"] = json!(["3.11", "3.12"]);
    web.build_info["platforms"] = json!(["musllinux_1_1_x86_64", "any"]);
    let r = report(&Pkg::new("local"), &web);
    let v: Vec<_> = r
        .violations()
        .map(|d| (d.kind, d.local.clone(), d.webhosting.clone()))
        .collect();
    assert_eq!(
        v,
        vec![
            (Kind::Python, Some("3.11".into()), Some("3.11, 3.12".into())),
            (
                Kind::Platform,
                Some("manylinux2014_x86_64, any".into()),
                Some("musllinux_1_1_x86_64, any".into())
            ),
        ]
    );
}

#[test]
fn vendored_versions_come_from_dist_info_and_the_lock() {
    let mut web = Pkg::new("webhosting");
    web.files.remove("vendor/flask-3.0.3.dist-info/METADATA");
    web.files.insert(
        "vendor/flask-3.1.0.dist-info/METADATA".into(),
        b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.1.0\n".to_vec(),
    );
    web.files.insert(
        "vendor.lock".into(),
        pretty_json(&json!({"wheels": [{"name": "Flask", "version": "3.1.0",
            "filename": "flask-3.1.0-py3-none-any.whl", "sha256": "cd".repeat(32)}]})),
    );
    let r = report(&Pkg::new("local"), &web);
    let kinds: Vec<_> = r
        .violations()
        .map(|d| (d.kind, d.subject(), d.local.clone(), d.webhosting.clone()))
        .collect();
    assert!(
        kinds.contains(&(
            Kind::Vendored,
            "flask".into(),
            Some("3.0.3".into()),
            Some("3.1.0".into())
        )),
        "{kinds:#?}"
    );
    assert!(
        kinds.iter().any(|(k, s, l, w)| *k == Kind::VendorLock
            && s == "flask"
            && l.as_deref().unwrap().starts_with("3.0.3 ")
            && w.as_deref().unwrap().starts_with("3.1.0 ")),
        "{kinds:#?}"
    );
    // The METADATA files themselves are also file differences.
    assert!(
        kinds
            .iter()
            .any(|(k, s, _, _)| *k == Kind::File && s == "vendor/flask-3.1.0.dist-info/METADATA")
    );
}

#[test]
fn the_entry_point_is_its_own_kind() {
    let mut web = Pkg::new("webhosting");
    web.files
        .insert("passenger_wsgi.py".into(), b"application = None\n".to_vec());
    assert_eq!(
        violations(&report(&Pkg::new("local"), &web)),
        vec![(Kind::EntryPoint, "passenger_wsgi.py".to_string())]
    );
}

#[test]
fn unallowed_build_info_fields_and_readme_changes_fail() {
    let mut web = Pkg::new("webhosting");
    web.build_info["git_commit"] = json!("def");
    let v = violations(&report(&Pkg::new("local"), &web));
    assert_eq!(
        v,
        vec![(Kind::BuildInfo, "build_info.json:git_commit".to_string())]
    );
    // A README that differs beyond the allowed fields is a real difference.
    let mut web = Pkg::new("webhosting");
    let text = String::from_utf8(web.files["DEPLOY_README.md"].clone()).unwrap() + "extra line\n";
    web.files
        .insert("DEPLOY_README.md".into(), text.into_bytes());
    assert_eq!(
        violations(&report(&Pkg::new("local"), &web)),
        vec![(Kind::File, "DEPLOY_README.md".to_string())]
    );
}

#[test]
fn an_empty_allow_list_reports_every_difference_as_failing() {
    let strict = AllowList::parse([], []).unwrap();
    let r = compare(
        &Pkg::new("local").view(),
        &Pkg::new("webhosting").view(),
        &strict,
    );
    assert_eq!(r.violations().count(), 4);
}

#[test]
fn declared_target_files_may_differ_or_exist_on_one_side_only() {
    let allow = AllowList::parse(
        [
            "target_files",
            "database_content",
            "build_info.build_id",
            "build_info.target",
        ],
        ["src/app/target_*.py"],
    )
    .unwrap();
    let mut local = Pkg::new("local");
    local.files.insert(
        "src/app/target_local.py".into(),
        b"MAIL = 'mailpit'\n".to_vec(),
    );
    let mut web = Pkg::new("webhosting");
    web.files.insert(
        "src/app/target_webhosting.py".into(),
        b"MAIL = 'smtp'\n".to_vec(),
    );
    web.files
        .insert("src/app/undeclared.py".into(), b"x\n".to_vec());
    let r = compare(&local.view(), &web.view(), &allow);
    let v: Vec<_> = r
        .differences
        .iter()
        .filter(|d| d.kind == Kind::File && d.subject().starts_with("src/"))
        .map(|d| (d.subject(), d.allowed_by.clone()))
        .collect();
    assert_eq!(
        v,
        vec![
            ("src/app/undeclared.py".to_string(), None),
            (
                "src/app/target_local.py".to_string(),
                Some("target_files".into())
            ),
            (
                "src/app/target_webhosting.py".to_string(),
                Some("target_files".into())
            ),
        ]
    );
    assert!(!r.is_clean());
}

#[test]
fn file_mode_differences_count() {
    let local = Pkg::new("local").view();
    let mut web = Pkg::new("local").view();
    web.files.get_mut("src/app/__init__.py").unwrap().mode = 0o755;
    let r = compare(&local, &web, &AllowList::default());
    // The mode also disagrees with that package's own manifest.
    assert_eq!(
        violations(&r),
        vec![
            (Kind::Manifest, "src/app/__init__.py".to_string()),
            (Kind::File, "src/app/__init__.py".to_string()),
        ]
    );
}

#[test]
fn report_serialises_with_names_for_scripts() {
    let mut local = Pkg::new("local");
    local.files.insert(
        "app.db".into(),
        db(&format!("{SCHEMA} ALTER TABLE users ADD COLUMN x TEXT;")),
    );
    let r = report(&local, &Pkg::new("webhosting"));
    let v = serde_json::to_value(&r).unwrap();
    let first = &v["differences"][0];
    assert_eq!(first["kind"], "column");
    assert_eq!(first["table"], "users");
    assert_eq!(first["column"], "x");
    assert_eq!(first["allowed"], false);
    assert!(first["webhosting"].is_null());
}

#[test]
fn a_build_info_copy_is_compared_through_build_info_and_must_be_its_bytes() {
    // Twins: the copies differ exactly as build_info.json does, and nothing more is reported.
    assert!(report(&Pkg::new("local"), &Pkg::new("webhosting")).is_clean());
    let mut edited = Pkg::new("webhosting");
    edited.copy_override = Some(b"{\"build_id\": \"forged\"}".to_vec());
    let r = report(&Pkg::new("local"), &edited);
    assert_eq!(
        violations(&r),
        vec![(Kind::Manifest, "src/app/build_info.json".to_string())]
    );
}
