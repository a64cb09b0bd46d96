//! The comparison itself: a pure function of two package views and the allow-list.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::view::{FileFact, PackageView};
use crate::model::allow::AllowList;
use crate::package::database::{Schema, Table};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A package's bytes disagree with its own MANIFEST.json (or the manifest is unreadable).
    Manifest,
    /// A file is in one package only, or its bytes or mode differ.
    File,
    EntryPoint,
    Python,
    Platform,
    /// A vendored distribution's version (from its `.dist-info/METADATA`).
    Vendored,
    /// A vendor.lock entry (name, version, wheel file name, wheel sha256).
    VendorLock,
    /// Another build_info.json field.
    BuildInfo,
    /// The database file's bytes (its content).
    DatabaseContent,
    /// The database could not be read as SQLite.
    Database,
    Table,
    Column,
    Index,
    Trigger,
    View,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::File => "file",
            Kind::EntryPoint => "entry point",
            Kind::Python => "python",
            Kind::Platform => "platform",
            Kind::Vendored => "vendored",
            Kind::VendorLock => "vendor.lock",
            Kind::BuildInfo => "build_info",
            Kind::DatabaseContent => "db content",
            Kind::Database => "database",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Index => "index",
            Kind::Trigger => "trigger",
            Kind::View => "view",
        }
    }
}

/// One difference. `path` names the file, build_info field, distribution or schema object;
/// `table` and `column` are set for schema differences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What the local package has (`None`: absent).
    pub local: Option<String>,
    pub webhosting: Option<String>,
    pub allowed: bool,
    /// The allow rule that accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by: Option<String>,
}

impl Difference {
    /// What the difference is about, as one name: a path, `table.column`, a field.
    pub fn subject(&self) -> String {
        match (&self.table, &self.column, &self.path) {
            (Some(t), Some(c), _) => format!("{t}.{c}"),
            (Some(t), None, Some(p)) => format!("{t}: {p}"),
            (Some(t), None, None) => t.clone(),
            (None, _, Some(p)) => p.clone(),
            (None, _, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ParityReport {
    pub differences: Vec<Difference>,
    pub local_files: usize,
    pub webhosting_files: usize,
}

impl ParityReport {
    /// True when every difference is allowed.
    pub fn is_clean(&self) -> bool {
        self.differences.iter().all(|d| d.allowed)
    }

    pub fn violations(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| !d.allowed)
    }
}

/// Files compared in their own way rather than by bytes.
const MANIFEST: &str = "MANIFEST.json";
const BUILD_INFO: &str = "build_info.json";
const README: &str = "DEPLOY_README.md";

struct Collector<'a> {
    allow: &'a AllowList,
    out: Vec<Difference>,
}

impl Collector<'_> {
    fn push(
        &mut self,
        kind: Kind,
        path: Option<String>,
        local: Option<String>,
        webhosting: Option<String>,
        allowed_by: Option<&str>,
    ) {
        self.out.push(Difference {
            kind,
            path,
            table: None,
            column: None,
            local,
            webhosting,
            allowed: allowed_by.is_some(),
            allowed_by: allowed_by.map(str::to_string),
        });
    }

    fn schema(
        &mut self,
        kind: Kind,
        table: Option<&str>,
        name: Option<&str>,
        local: Option<String>,
        webhosting: Option<String>,
    ) {
        let subject = match (table, name) {
            (Some(t), Some(n)) => format!("{t}.{n}"),
            (Some(t), None) => t.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => String::new(),
        };
        let allowed_by = self.allow.schema(&subject).map(str::to_string);
        let (path, column) = match kind {
            Kind::Column => (None, name.map(str::to_string)),
            _ => (name.map(str::to_string), None),
        };
        self.out.push(Difference {
            kind,
            path,
            table: table.map(str::to_string),
            column,
            local,
            webhosting,
            allowed: allowed_by.is_some(),
            allowed_by,
        });
    }
}

/// Compares two packages. Integrity findings (a package disagreeing with its own manifest) are
/// never allowed.
pub fn compare(local: &PackageView, web: &PackageView, allow: &AllowList) -> ParityReport {
    let mut c = Collector {
        allow,
        out: Vec::new(),
    };
    integrity(&mut c, local, true);
    integrity(&mut c, web, false);
    files(&mut c, local, web);
    build_info(&mut c, local, web);
    vendored(&mut c, local, web);
    schema(&mut c, local, web);
    let mut differences = c.out;
    differences.sort_by_key(|d| (d.allowed, d.kind, d.subject()));
    ParityReport {
        differences,
        local_files: local.files.len(),
        webhosting_files: web.files.len(),
    }
}

/// Checks a package's bytes against its own MANIFEST.json.
fn integrity(c: &mut Collector, view: &PackageView, is_local: bool) {
    let mut push = |path: Option<String>, finding: String| {
        let (l, w) = if is_local {
            (Some(finding), None)
        } else {
            (None, Some(finding))
        };
        c.push(Kind::Manifest, path, l, w, None);
    };
    // A copy of build_info.json differs exactly where build_info.json does, so it is compared
    // through build_info.json; it must therefore be the same bytes.
    for copy in &view.build_info_copies {
        match (view.files.get(copy), view.files.get(BUILD_INFO)) {
            (Some(a), Some(b)) if a.sha256 == b.sha256 => {}
            (None, _) => push(
                Some(copy.clone()),
                "missing ([package] build_info_copies names it)".into(),
            ),
            _ => push(Some(copy.clone()), "differs from build_info.json".into()),
        }
    }
    let manifest = match &view.manifest {
        Ok(m) => m,
        Err(e) => {
            push(Some(MANIFEST.into()), e.clone());
            return;
        }
    };
    for (path, fact) in &view.files {
        if path == MANIFEST {
            continue;
        }
        match manifest.get(path) {
            None => push(
                Some(path.clone()),
                "in the zip, not in MANIFEST.json".into(),
            ),
            Some(entry) if entry.sha256 != fact.sha256 || entry.size != fact.size => push(
                Some(path.clone()),
                format!(
                    "bytes hash to {} ({} B), MANIFEST.json says {} ({} B)",
                    short(&fact.sha256),
                    fact.size,
                    short(&entry.sha256),
                    entry.size
                ),
            ),
            Some(entry) if entry.mode != fact.mode => push(
                Some(path.clone()),
                format!("mode {:o}, MANIFEST.json says {:o}", fact.mode, entry.mode),
            ),
            Some(_) => {}
        }
    }
    for path in manifest.keys() {
        if !view.files.contains_key(path) {
            push(
                Some(path.clone()),
                "in MANIFEST.json, not in the zip".into(),
            );
        }
    }
}

fn describe_file(f: &FileFact) -> String {
    format!("sha256 {} {} B mode {:o}", short(&f.sha256), f.size, f.mode)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn files(c: &mut Collector, local: &PackageView, web: &PackageView) {
    let paths: BTreeSet<&String> = local.files.keys().chain(web.files.keys()).collect();
    for path in paths {
        if path == MANIFEST || path == BUILD_INFO || local.build_info_copies.contains(path) {
            continue; // checked as claims (integrity) and field by field (build_info)
        }
        let (l, w) = (local.files.get(path), web.files.get(path));
        if l == w {
            continue;
        }
        let is_db = local.database.as_deref() == Some(path.as_str());
        let kind = if is_db && l.is_some() && w.is_some() {
            Kind::DatabaseContent
        } else if *path == local.entry_point {
            Kind::EntryPoint
        } else {
            Kind::File
        };
        let allowed_by = match kind {
            Kind::DatabaseContent if l.map(|f| f.mode) == w.map(|f| f.mode) => {
                c.allow.database_content().map(str::to_string)
            }
            _ if path == README => readme_allowance(c.allow, local, web),
            _ => c.allow.file(path).map(str::to_string),
        };
        c.push(
            kind,
            Some(path.clone()),
            l.map(describe_file),
            w.map(describe_file),
            allowed_by.as_deref(),
        );
    }
}

/// DEPLOY_README.md is rendered from build_info values: it may differ exactly where allowed
/// build_info fields differ. Each side's allowed values are replaced by `{{field}}` (whole words
/// only) and the rest must be equal.
fn readme_allowance(allow: &AllowList, local: &PackageView, web: &PackageView) -> Option<String> {
    let (Some(lt), Some(wt)) = (&local.readme, &web.readme) else {
        return None;
    };
    let (Ok(li), Ok(wi)) = (&local.build_info, &web.build_info) else {
        return None;
    };
    let mut used = Vec::new();
    let mut fields: Vec<&String> = li
        .keys()
        .filter(|k| allow.build_info(k).is_some())
        .collect();
    // Longer values first, so a value that contains another is replaced whole.
    fields.sort_by_key(|k| std::cmp::Reverse(li[*k].as_str().map_or(0, str::len)));
    let (mut ln, mut wn) = (lt.clone(), wt.clone());
    for f in fields {
        if let (Some(Value::String(a)), Some(Value::String(b))) = (li.get(f), wi.get(f))
            && a != b
        {
            let placeholder = format!("{{{{{f}}}}}");
            ln = replace_word(&ln, a, &placeholder);
            wn = replace_word(&wn, b, &placeholder);
            used.push(format!("build_info.{f}"));
        }
    }
    (ln == wn && !used.is_empty()).then(|| used.join(", "))
}

fn replace_word(text: &str, word: &str, with: &str) -> String {
    if word.is_empty() {
        return text.to_string();
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back().or(out.chars().next_back());
        let after = rest[i + word.len()..].chars().next();
        let bounded = !before.is_some_and(is_word) && !after.is_some_and(is_word);
        out.push_str(&rest[..i]);
        out.push_str(if bounded { with } else { word });
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn build_info(c: &mut Collector, local: &PackageView, web: &PackageView) {
    // Unreadable build_info.json is already an integrity finding; nothing more to compare.
    let (Ok(l), Ok(w)) = (&local.build_info, &web.build_info) else {
        return;
    };
    let keys: BTreeSet<&String> = l.keys().chain(w.keys()).collect();
    for key in keys {
        let (lv, wv) = (l.get(key), w.get(key));
        if lv == wv {
            continue;
        }
        let kind = match key.as_str() {
            "pythons" => Kind::Python,
            "platforms" => Kind::Platform,
            _ => Kind::BuildInfo,
        };
        let allowed_by = match kind {
            Kind::BuildInfo => c.allow.build_info(key),
            _ => None,
        };
        let path = format!("{BUILD_INFO}:{key}");
        c.push(kind, Some(path), lv.map(render), wv.map(render), allowed_by);
    }
}

fn vendored(c: &mut Collector, local: &PackageView, web: &PackageView) {
    let names: BTreeSet<&String> = local.vendored.keys().chain(web.vendored.keys()).collect();
    for name in names {
        let (l, w) = (local.vendored.get(name), web.vendored.get(name));
        if l != w {
            c.push(
                Kind::Vendored,
                Some(name.clone()),
                l.cloned(),
                w.cloned(),
                None,
            );
        }
    }
    let lock = |v: &PackageView| -> Option<BTreeMap<String, String>> {
        match &v.lock {
            Some(Ok(lock)) => Some(
                lock.wheels
                    .iter()
                    .map(|w| {
                        (
                            super::view::normalise_name(&w.name),
                            format!("{} {} sha256 {}", w.version, w.filename, short(&w.sha256)),
                        )
                    })
                    .collect(),
            ),
            _ => None,
        }
    };
    match (&local.lock, &web.lock) {
        (Some(Err(e)), _) => c.push(
            Kind::VendorLock,
            Some("vendor.lock".into()),
            Some(e.clone()),
            None,
            None,
        ),
        (_, Some(Err(e))) => c.push(
            Kind::VendorLock,
            Some("vendor.lock".into()),
            None,
            Some(e.clone()),
            None,
        ),
        _ => {}
    }
    let (l, w) = (
        lock(local).unwrap_or_default(),
        lock(web).unwrap_or_default(),
    );
    let names: BTreeSet<&String> = l.keys().chain(w.keys()).collect();
    for name in names {
        if l.get(name) != w.get(name) {
            c.push(
                Kind::VendorLock,
                Some(name.clone()),
                l.get(name).cloned(),
                w.get(name).cloned(),
                None,
            );
        }
    }
}

fn schema(c: &mut Collector, local: &PackageView, web: &PackageView) {
    let as_schema = |v: &PackageView| match &v.schema {
        Some(Ok(s)) => Ok(Some(s.clone())),
        Some(Err(e)) => Err(e.clone()),
        None => Ok(None),
    };
    let (l, w) = match (as_schema(local), as_schema(web)) {
        (Ok(l), Ok(w)) => (l, w),
        (l, w) => {
            let db = local.database.clone();
            c.push(Kind::Database, db, l.err(), w.err(), None);
            return;
        }
    };
    // A database in one package only is already a file difference.
    let (Some(l), Some(w)) = (l, w) else {
        return;
    };
    schemas(c, &l, &w);
}

fn column_text(pos: usize, col: &(String, String, bool, Option<String>, i64, i64)) -> String {
    let (_, ty, notnull, default, pk, hidden) = col;
    let mut s = format!(
        "#{} {}",
        pos + 1,
        if ty.is_empty() { "(no type)" } else { ty }
    );
    if *notnull {
        s.push_str(" NOT NULL");
    }
    if let Some(d) = default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if *pk > 0 {
        s.push_str(&format!(" PK{pk}"));
    }
    if *hidden != 0 {
        s.push_str(&format!(" hidden={hidden}"));
    }
    s
}

fn index_text(i: &(String, bool, String, bool, Vec<String>)) -> String {
    let (_, unique, origin, partial, cols) = i;
    format!(
        "{}({}) origin={origin}{}",
        if *unique { "UNIQUE " } else { "" },
        cols.join(", "),
        if *partial { " partial" } else { "" }
    )
}

fn table_text(t: &Table) -> String {
    format!("{} columns, {} indexes", t.columns.len(), t.indexes.len())
}

fn schemas(c: &mut Collector, l: &Schema, w: &Schema) {
    let lt: BTreeMap<&str, &Table> = l.tables.iter().map(|t| (t.name.as_str(), t)).collect();
    let wt: BTreeMap<&str, &Table> = w.tables.iter().map(|t| (t.name.as_str(), t)).collect();
    let names: BTreeSet<&str> = lt.keys().chain(wt.keys()).copied().collect();
    for name in names {
        let (a, b) = match (lt.get(name), wt.get(name)) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                c.schema(
                    Kind::Table,
                    Some(name),
                    None,
                    a.map(|t| table_text(t)),
                    b.map(|t| table_text(t)),
                );
                continue;
            }
        };
        let cols = |t: &Table| -> BTreeMap<String, String> {
            t.columns
                .iter()
                .enumerate()
                .map(|(i, col)| (col.0.clone(), column_text(i, col)))
                .collect()
        };
        let (ac, bc) = (cols(a), cols(b));
        let cnames: BTreeSet<&String> = ac.keys().chain(bc.keys()).collect();
        for col in cnames {
            if ac.get(col) != bc.get(col) {
                c.schema(
                    Kind::Column,
                    Some(name),
                    Some(col),
                    ac.get(col).cloned(),
                    bc.get(col).cloned(),
                );
            }
        }
        let idx = |t: &Table| -> BTreeMap<String, String> {
            t.indexes
                .iter()
                .map(|i| (i.0.clone(), index_text(i)))
                .collect()
        };
        let (ai, bi) = (idx(a), idx(b));
        let inames: BTreeSet<&String> = ai.keys().chain(bi.keys()).collect();
        for i in inames {
            if ai.get(i) != bi.get(i) {
                c.schema(
                    Kind::Index,
                    Some(name),
                    Some(i),
                    ai.get(i).cloned(),
                    bi.get(i).cloned(),
                );
            }
        }
    }
    let objs = |s: &Schema| -> BTreeMap<(String, String), String> {
        s.objects
            .iter()
            .map(|(ty, name, sql)| ((ty.clone(), name.clone()), sql.clone()))
            .collect()
    };
    let (ao, bo) = (objs(l), objs(w));
    let keys: BTreeSet<&(String, String)> = ao.keys().chain(bo.keys()).collect();
    for key in keys {
        if ao.get(key) != bo.get(key) {
            let kind = if key.0 == "view" {
                Kind::View
            } else {
                Kind::Trigger
            };
            c.schema(
                kind,
                None,
                Some(&key.1),
                ao.get(key).cloned(),
                bo.get(key).cloned(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_word_respects_word_boundaries() {
        assert_eq!(
            replace_word("target `local` locally", "local", "{{t}}"),
            "target `{{t}}` locally"
        );
        assert_eq!(replace_word("deploy local\n", "local", "X"), "deploy X\n");
        assert_eq!(
            replace_word("xlocal local_y", "local", "X"),
            "xlocal local_y"
        );
    }
}
