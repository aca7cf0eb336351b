//! The library's modules form layers: no two modules import each other, directly or through
//! others, whether modules are taken file by file or as the top-level modules of `lib.rs`.
//!
//! The graph is read from the sources: every `crate::…` and `super::…` path outside comments
//! and `#[cfg(test)] mod tests` is an edge to the deepest module the path names. A module and
//! its own submodules are one unit (a parent declares and re-exports its children), so edges
//! between them are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`distill::methods::dkd`) → source text, for every file under `src/`.
fn modules() -> BTreeMap<String, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(
                    module_name(&root, &path),
                    std::fs::read_to_string(&path).unwrap(),
                );
            }
        }
    }
    out
}

fn module_name(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its unit-test module.
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that starts with `crate::` or `super::`, with `{a, b::c}` groups expanded.
fn paths(code: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for anchor in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(anchor) {
            let before = rest[..at].chars().last();
            rest = &rest[at + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for path in expand(rest) {
                out.push((anchor.trim_end_matches("::").to_string(), path));
            }
        }
    }
    out
}

/// The paths a `use` tail starting at `text` names: `a::b::c`, or `a::{b, c::d}`.
fn expand(text: &str) -> Vec<String> {
    let ident_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    let head = text[..ident_end].trim_end_matches(':');
    if text[ident_end..].starts_with('{') && text[..ident_end].ends_with("::") {
        let inner = &text[ident_end + 1..];
        let mut depth = 0;
        let mut items = Vec::new();
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    items.push(&inner[start..i]);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for item in items {
            for tail in expand(item.trim()) {
                out.push(if head.is_empty() {
                    tail
                } else {
                    format!("{head}::{tail}")
                });
            }
        }
        out
    } else {
        vec![head.to_string()]
    }
}

/// The deepest known module a path names, from `base` (the module it is relative to).
fn resolve(known: &BTreeSet<String>, base: &str, path: &str) -> Option<String> {
    let full = match (base.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}::{path}"),
    };
    let parts: Vec<&str> = full.split("::").filter(|p| !p.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| known.contains(candidate))
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
}

/// Module → modules it imports, collapsed to the first `depth` path segments.
fn graph(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let top = |m: &str| m.split("::").take(depth).collect::<Vec<_>>().join("::");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in &modules {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for (anchor, path) in paths(&code(source)) {
            let base = if anchor == "crate" { "" } else { parent };
            let Some(target) = resolve(&known, base, &path) else {
                continue;
            };
            let (from, to) = (top(module), top(&target));
            if !related(&from, &to) && !related(module, &target) {
                edges.entry(from).or_default().insert(to);
            }
        }
    }
    edges
}

/// A cycle of the graph, if it has one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, edges, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node.as_str()) {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, edges, &mut state, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}

#[test]
fn file_modules_never_import_each_other() {
    let edges = graph(usize::MAX);
    assert!(
        edges.len() > 40,
        "the graph was read: {} modules",
        edges.len()
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!("modules import each other: {}", cycle.join(" → "));
    }
}

#[test]
fn top_level_modules_form_layers() {
    let edges = graph(1);
    if let Some(cycle) = find_cycle(&edges) {
        panic!("top-level modules import each other: {}", cycle.join(" → "));
    }
}

#[test]
fn the_checker_sees_cycles_and_groups() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert!(find_cycle(&edges).is_none());
    edges.entry("c".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        expand("distill::{loss::KdWeights, method::{Method, Shared}};"),
        [
            "distill::loss::KdWeights",
            "distill::method::Method",
            "distill::method::Shared"
        ]
    );
    let found = paths("use super::ops::x; let y = crate::models::Network::new(); // crate::z");
    assert_eq!(found.len(), 3, "{found:?}");
}

/// Every Rust file of the workspace's crates, with its line count.
fn workspace_files() -> Vec<(PathBuf, usize)> {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut stack = vec![crates];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                out.push((path, lines));
            }
        }
    }
    out
}

#[test]
fn every_file_reads_in_one_sitting() {
    let files = workspace_files();
    assert!(
        files.len() > 100,
        "the crates were read: {} files",
        files.len()
    );
    let long: Vec<String> = files
        .iter()
        .filter(|(_, lines)| *lines > 800)
        .map(|(path, lines)| format!("{} ({lines} lines)", path.display()))
        .collect();
    assert!(long.is_empty(), "files over 800 lines: {}", long.join(", "));
}
