//! The layering of `src/`, checked from the source: every `crate::` and `super::` path in every
//! file (inline paths too, not only `use` lines) is mapped to the top-level module it names. A
//! module may name only modules below it in [`ORDER`] (docs/ARCHITECTURE.md, "Layers"), and the
//! top-level modules must form no cycle.
//!
//! [`DEBT`] lists upward references that are allowed for now, each with the reason it is still
//! there. It is empty: the last ones went with `model/`, `probe`, `remote/` and
//! `gatekeeper::build`. It stays as a ratchet: a listed reference that is gone fails too, so the
//! list is always true.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Bottom first: a module may import only modules before it.
const ORDER: &[&str] = &[
    "error",
    "model",
    "envfile",
    "fsutil",
    "events",
    "docker",
    "git",
    "config",
    "requirements",
    "tls",
    "images",
    "probe",
    "package",
    "ledger",
    "gate",
    "gatekeeper",
    "history",
    "stack",
    "remote",
    "parity",
    "run",
    "watch",
    "deploy",
    "env_report",
    "ci",
    "init",
    "cli",
];

/// Upward references allowed for now: (from, to, why it is still there). None are left.
#[rustfmt::skip]
const DEBT: &[(&str, &str, &str)] = &[
];

/// Every top-level module named by each file: `(file, line, from, to)` for each reference.
fn references(files: &[(String, String)]) -> Vec<(String, usize, String, String)> {
    let mut out = Vec::new();
    for (path, text) in files {
        // src/a/b.rs → [a, b]; src/a/mod.rs → [a]; src/a.rs → [a].
        let mut module: Vec<&str> = path
            .trim_start_matches("src/")
            .trim_end_matches(".rs")
            .split('/')
            .collect();
        if module.last() == Some(&"mod") {
            module.pop();
        }
        let Some(top) = module.first().map(|s| s.to_string()) else {
            continue;
        };
        if top == "lib" || top == "main" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let mut named: Vec<String> = Vec::new();
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                if let Some(group) = after.strip_prefix('{') {
                    // `crate::{a, b::c}`: the first segment of each item.
                    let inner = group.split('}').next().unwrap_or_default();
                    named.extend(inner.split(',').map(|s| first_segment(s.trim())));
                } else {
                    named.push(first_segment(after));
                }
                rest = after;
            }
            let mut rest = code;
            while let Some(i) = rest.find("super::") {
                // Count the chain of `super::`.
                let mut depth = 0;
                let mut after = &rest[i..];
                while let Some(a) = after.strip_prefix("super::") {
                    depth += 1;
                    after = a;
                }
                // Above the file's own module path is the crate root: the next segment names a
                // top-level module. (Inline `mod` blocks only make the path deeper, staying
                // inside this module.)
                if depth >= module.len() {
                    named.push(first_segment(after));
                }
                rest = after;
            }
            for to in named {
                if to != top && ORDER.contains(&to.as_str()) {
                    out.push((path.clone(), n + 1, top.clone(), to));
                }
            }
        }
    }
    out
}

fn first_segment(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// What is wrong with `files`: upward references not in `debt`, debt entries no file needs any
/// more, modules missing from ORDER, and cycles among the remaining edges.
fn problems(files: &[(String, String)], debt: &[(&str, &str, &str)]) -> Vec<String> {
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut out = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut used_debt = BTreeSet::new();
    for (file, line, from, to) in references(files) {
        let Some(rf) = rank(&from) else {
            out.push(format!("{file}: module `{from}` has no place in ORDER"));
            continue;
        };
        let rt = rank(&to).expect("only ORDER modules are collected");
        if rt > rf {
            if debt.iter().any(|(f, t, _)| *f == from && *t == to) {
                used_debt.insert((from.clone(), to.clone()));
                continue;
            }
            out.push(format!(
                "{file}:{line}: `{from}` names `{to}`, which is above it (docs/ARCHITECTURE.md, \"Layers\")"
            ));
        }
        edges.entry(from).or_default().insert(to);
    }
    for (f, t, _) in debt {
        if !used_debt.contains(&(f.to_string(), t.to_string())) {
            out.push(format!(
                "DEBT lists `{f}` → `{t}`, which no file has any more: take it off"
            ));
        }
    }
    // Cycles among the edges that are not debt (a depth-first search).
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            out.push(format!("cycle: {} → {node}", path[at..].join(" → ")));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, path, done, out);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, &edges, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(root.join("src")) {
        let e = e.unwrap();
        if e.path().extension().is_some_and(|x| x == "rs") {
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            files.push((rel, std::fs::read_to_string(e.path()).unwrap()));
        }
    }
    files
}

#[test]
fn src_references_point_only_down_the_layers() {
    let files = sources();
    assert!(files.len() > 50, "{}", files.len());
    let problems = problems(&files, DEBT);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_top_level_module_has_a_place_in_the_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let module = name.trim_end_matches(".rs");
        if !["lib", "main"].contains(&module) && !ORDER.contains(&module) {
            missing.push(module.to_string());
        }
    }
    assert!(missing.is_empty(), "not in ORDER: {missing:?}");
}

/// The checker itself: an inline upward call (no `use` line) inside `stack/` fails, a
/// `super::super::` that leaves the module is seen, and a cycle is named.
#[test]
fn an_inline_upward_call_fails() {
    let file = |p: &str, t: &str| (p.to_string(), t.to_string());
    let upward = [file(
        "src/stack/run.rs",
        "fn f() {\n    let x = crate::deploy::backup::extract(a, b, c)?;\n}\n",
    )];
    let p = problems(&upward, &[]);
    assert!(
        p.iter()
            .any(|m| m.starts_with("src/stack/run.rs:2: `stack` names `deploy`")),
        "{p:?}"
    );
    // The same reference with its debt entry passes; an unused entry does not.
    assert!(problems(&upward, &[("stack", "deploy", "x")]).is_empty());
    assert!(!problems(&[], &[("stack", "deploy", "x")]).is_empty());
    // Downward and grouped paths are fine; a grouped upward one is not.
    let ok = [file(
        "src/run/job.rs",
        "use crate::{error::Failure, stack::Launch};\n",
    )];
    assert!(problems(&ok, &[]).is_empty(), "{:?}", problems(&ok, &[]));
    let grouped = [file(
        "src/config.rs",
        "use crate::{error::Exit, parity::AllowList};\n",
    )];
    assert_eq!(
        problems(&grouped, &[]).len(),
        1,
        "{:?}",
        problems(&grouped, &[])
    );
    // `super::super::` out of stack/wait/http.rs reaches the crate root.
    let sup = [file(
        "src/stack/wait/http.rs",
        "use super::super::super::deploy::x;\n",
    )];
    assert_eq!(problems(&sup, &[]).len(), 1);
    let inside = [file(
        "src/stack/wait/http.rs",
        "use super::super::engine::x;\n",
    )];
    assert!(problems(&inside, &[]).is_empty());
    // A cycle is named (debt edges are left out of the search: they are the known way round).
    let cycle = [
        file("src/stack/run.rs", "crate::deploy::x();\n"),
        file("src/deploy/mod.rs", "crate::stack::y();\n"),
    ];
    let p = problems(&cycle, &[]);
    assert!(
        p.iter().any(|m| m == "cycle: deploy → stack → deploy"),
        "{p:?}"
    );
    assert!(problems(&cycle, &[("stack", "deploy", "x")]).is_empty());
}

/// Stages emit events and return reports; only `cli` (and the terminal reporter in `events`)
/// writes to the terminal (docs/ARCHITECTURE.md). Test code, after a file's `#[cfg(test)]`, may.
#[test]
fn no_stage_prints() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if ["src/main.rs", "src/events.rs"].contains(&path.as_str())
            || path.starts_with("src/cli/")
            || path.ends_with("/tests.rs")
        {
            continue;
        }
        // Up to the inline test module (`#[cfg(test)] mod tests {`); a `mod tests;` line is
        // only a declaration, and tests.rs files are skipped above.
        let cut = text
            .match_indices("#[cfg(test)]")
            .find(|(i, m)| {
                let after = text[i + m.len()..].trim_start();
                after.starts_with("mod ") && after.lines().next().is_some_and(|l| l.ends_with('{'))
            })
            .map_or(text.len(), |(i, _)| i);
        let code = &text[..cut];
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            if ["println!", "eprintln!", "print!(", "eprint!("]
                .iter()
                .any(|m| line.contains(m))
            {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "stages that print:\n{}", found.join("\n"));
}
