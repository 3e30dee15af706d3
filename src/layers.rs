//! The crate's layers, held by tests that read the source: nothing imports
//! upward (the engine never names a job, the report never names the engine),
//! and a job never imports another job, so each job reads on its own and a
//! change to one cannot break another. What several jobs share lives below
//! them ([`crate::lookup`], [`crate::replacement`], [`crate::engine`]).
//!
//! The scan reads `crate::…` paths (with `{…}` groups) and `super::…` paths,
//! outside comments; it is a guard against an import that slips in, not a
//! Rust parser.

use std::path::{Path, PathBuf};

/// Low to high: a module may name modules of its own tier or lower ones.
/// Modules not listed (`test_fixtures`, tests only) are not checked.
const TIERS: &[&[&str]] = &[
    &["cloud"],
    &["config", "event"],
    &["groups", "step"],
    &["error"],
    &["report"],
    &["engine", "metrics", "lease", "notice", "notify", "pause"],
    &["lookup"],
    &["replacement"],
    &["jobs"],
    &["handler"],
    &["fleet"],
];

/// The one place where jobs are composed: (importer, imported) pairs inside
/// `jobs/`, `*` for any job. The follow-up chain runs the reconcile, the
/// failover, the fence, the snapshot and the standby's upkeep; no job uses
/// it, not even the reconcile (the handler runs the reconcile through it).
const COMPOSED: &[(&str, &str)] = &[("chain", "*")];

fn tier(module: &str) -> Option<usize> {
    TIERS.iter().position(|t| t.contains(&module))
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a source file: `jobs/standby/plan.rs` is
/// `[jobs, standby, plan]`, `jobs/standby/mod.rs` is `[jobs, standby]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The text without comments (doc links name modules they do not import).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths of a use tree starting at `s` (after a `crate::` or `super::`):
/// `a::b`, `a::{b, c::d}`, `{a, b}`, each as its segments.
fn tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = 0;
    let chars: Vec<char> = s.chars().collect();
    loop {
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i > start {
            prefix.push(chars[start..i].iter().collect::<String>());
        }
        if i < chars.len() && chars[i] == '{' {
            let mut paths = Vec::new();
            i += 1;
            loop {
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
                    i += 1;
                }
                if i >= chars.len() || chars[i] == '}' {
                    return (paths, i + 1);
                }
                let rest: String = chars[i..].iter().collect();
                let (inner, used) = tree(&rest);
                paths.extend(inner.into_iter().map(|p| [prefix.clone(), p].concat()));
                i += used.max(1);
            }
        }
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
            continue;
        }
        return (vec![prefix], i);
    }
}

/// Every path the code names, absolute from the crate root: `crate::a::b`
/// as `[a, b]`, and `super::…` resolved from `module` (one level deeper
/// inside the file's `#[cfg(test)] mod tests`).
fn named(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let tests_at = code.find("#[cfg(test)]\nmod ").unwrap_or(code.len());
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        out.extend(tree(&code[at + "crate::".len()..]).0);
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with(|c: char| is_ident(c) || c == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut base: Vec<String> = module.to_vec();
        if at > tests_at {
            base.push("tests".to_owned());
        }
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        out.extend(tree(rest).0.into_iter().map(|p| [base.clone(), p].concat()));
    }
    out.retain(|p| !p.is_empty());
    out
}

/// What the source `text` of `module` (a file's module path) names that its
/// place forbids.
fn violations(module: &[String], text: &str) -> Vec<String> {
    let Some(own) = module.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in named(&code(text), module) {
        let first = path[0].as_str();
        if let (Some(mine), Some(theirs)) = (tier(own), tier(first))
            && theirs > mine
        {
            out.push(format!(
                "{} names crate::{} (a higher layer)",
                module.join("::"),
                path.join("::")
            ));
        }
        if own == "jobs" && first == "jobs" {
            let (Some(job), other) = (module.get(1), path.get(1)) else {
                continue;
            };
            let allowed = |o: &str| {
                COMPOSED
                    .iter()
                    .any(|(a, b)| a == job && (*b == "*" || *b == o))
            };
            match other {
                Some(o) if o == job || allowed(o) => {}
                _ => out.push(format!(
                    "job {job} ({}) names crate::{}: a job never imports another job",
                    module.join("::"),
                    path.join("::")
                )),
            }
        }
    }
    out
}

#[test]
fn nothing_imports_upward_and_jobs_import_no_other_job() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in sources(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == Path::new("main.rs") || relative == Path::new("lib.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        found.extend(violations(&module_of(relative), &text));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_scan_sees_every_way_of_naming_another_job() {
    let module = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
    let fence = module("jobs/fence");
    let plan = module("jobs/standby/plan");
    for (m, text) in [
        (&fence, "use crate::jobs::failover::FailoverRequest;"),
        (&fence, "use crate::jobs::{self, snapshot};"),
        (&fence, "use crate::{lookup, jobs::standby::after};"),
        (&fence, "use super::preflight;"),
        (&plan, "use super::super::failover::run;"),
        (&plan, "let x = crate::jobs::snapshot::run(c);"),
    ] {
        assert!(!violations(m, text).is_empty(), "{text} in {m:?}");
    }
    for (m, text) in [
        (
            &fence,
            "use crate::lookup::{self, World};\nuse crate::jobs::fence::Sight;",
        ),
        (&plan, "use super::upkeep;\nuse crate::replacement::unfit;"),
        (
            &fence,
            "// see crate::jobs::failover\nuse crate::engine::Step;",
        ),
        (&module("jobs/chain"), "use crate::jobs::{fence, standby};"),
    ] {
        assert!(violations(m, text).is_empty(), "{text} in {m:?}");
    }
    let reconcile = module("jobs/reconcile");
    assert!(!violations(&reconcile, "use crate::jobs::fence;").is_empty());
    assert!(!violations(&reconcile, "use crate::jobs::chain;").is_empty());
    let engine = module("engine/execute");
    assert!(!violations(&engine, "use crate::lookup::World;").is_empty());
    assert!(!violations(&module("report"), "use crate::engine::Step;").is_empty());
}
