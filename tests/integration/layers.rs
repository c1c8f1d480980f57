//! The house's layers import downward only (issue 10): units, model, input, engine, analysis,
//! report, cli. Read from the sources themselves: every `crate::` and `super::` path outside
//! comments and test modules is an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first, and the top-level modules of each. A module may import its own
/// layer and those below it.
const LAYERS: [(&str, &[&str]); 7] = [
    ("units", &["units", "error", "tomlfile"]),
    ("model", &["model"]),
    ("input", &["input"]),
    ("engine", &["engine"]),
    ("analysis", &["analysis"]),
    ("report", &["report"]),
    ("cli", &["app", "cli", "options"]),
];

fn layer_of(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap();
    LAYERS.iter().position(|(_, modules)| modules.contains(&top))
}

/// Each module of `src/` (`sweep::driver`, `model`) and its text before its test module, with
/// comments removed.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let mut segments: Vec<String> = relative
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if segments.last().is_some_and(|s| s == "mod") {
                segments.pop();
            }
            if segments == ["lib"] || segments == ["main"] {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap();
            let code: String = text
                .lines()
                .map(|line| line.split("//").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n");
            out.insert(segments.join("::"), code);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The paths named after `crate::` or `super::` in `code`, as segments from the crate root;
/// `a::{b, c::d}` names `a::b` and `a::c::d`.
fn paths(module: &str, code: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    for (keyword, base) in [
        ("crate::", vec![]),
        ("super::", {
            let mut parent: Vec<String> = module.split("::").map(String::from).collect();
            parent.pop();
            parent
        }),
    ] {
        let mut rest = code;
        while let Some(at) = rest.find(keyword) {
            let preceded_by_word = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + keyword.len()..];
            if !preceded_by_word {
                path_tree(rest, base.clone(), &mut out);
            }
        }
    }
    out
}

/// Read `a::b::{c, d::e}` from the start of `text` below `prefix`.
fn path_tree(text: &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut text = text;
    loop {
        let ident: String = text
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        prefix.push(ident.clone());
        text = &text[ident.len()..];
        match text.strip_prefix("::") {
            Some(after) => text = after,
            None => break,
        }
    }
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    path_tree(group[item_start..i].trim_start(), prefix.clone(), out);
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    path_tree(group[item_start..i].trim_start(), prefix.clone(), out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    }
    out.push(prefix);
}

/// The modules each module imports (its own submodules and ancestors aside: a folder is one
/// unit of a layer).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut edges = BTreeMap::new();
    for (module, code) in &modules {
        let mut targets = BTreeSet::new();
        for path in paths(module, code) {
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target {
                let related = target == *module
                    || module.starts_with(&format!("{target}::"))
                    || target.starts_with(&format!("{module}::"));
                if !related {
                    targets.insert(target);
                }
            }
        }
        edges.insert(module.clone(), targets);
    }
    edges
}

#[test]
fn every_module_has_a_layer_and_imports_only_its_own_and_lower_layers() {
    let edges = imports();
    assert!(edges.len() > 30, "found only {} modules", edges.len());
    let mut upward = vec![];
    for (module, targets) in &edges {
        let Some(layer) = layer_of(module) else {
            panic!("src/{module}: a new top-level module: place it in a layer of LAYERS");
        };
        for target in targets {
            let target_layer = layer_of(target).unwrap();
            if target_layer > layer {
                upward.push(format!(
                    "{module} ({}) imports {target} ({})",
                    LAYERS[layer].0, LAYERS[target_layer].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that go up a layer:\n{}",
        upward.join("\n")
    );
    // The reader sees what it should: these imports exist in the sources.
    for (module, target) in [
        ("analysis::plan", "engine::sweep::driver"),
        ("analysis::draws", "engine::sweep::driver"),
        ("model::stage", "model::profile"),
        ("engine::search", "input::scenario"),
    ] {
        assert!(edges[module].contains(target), "{module}: {:?}", edges[module]);
    }
}

/// Analysis (plan, validate, fit, the draws) calls the one driver, which owns the choice of
/// engine and the fallback from GPU to CPU; it never drives an engine itself.
#[test]
fn analysis_calls_the_driver_never_an_engine() {
    let edges = imports();
    let analysis = LAYERS.iter().position(|(name, _)| *name == "analysis").unwrap();
    let mut direct = vec![];
    for (module, targets) in &edges {
        if layer_of(module) != Some(analysis) {
            continue;
        }
        for target in targets {
            if target == "engine::sweep::cpu" || target == "engine::sweep::gpu" {
                direct.push(format!("{module} imports {target}"));
            }
        }
    }
    assert!(direct.is_empty(), "{}", direct.join("\n"));
}

/// Regression (issue 10): catalog, export, fit, plan, scenario, search, sweep, uncertainty and
/// validate imported each other in a 15-module cycle; model::{memory, profile, step} in a
/// three-module one.
#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let edges = imports();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|m| m == module) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        stack.push(module.to_string());
        for target in &edges[module] {
            if let Some(cycle) = visit(target, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        if let Some(cycle) = visit(module, &edges, &mut vec![], &mut done) {
            panic!("an import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn paths_are_read_through_groups_and_past_words_that_end_in_the_keyword() {
    let found = paths(
        "sweep::driver",
        "use crate::{catalog::Catalog, sweep::{cpu, gpu::GpuEngine}};\nuse super::cpu::x; let a = notcrate::b;",
    );
    let joined: BTreeSet<String> = found.iter().map(|p| p.join("::")).collect();
    for expected in [
        "catalog::Catalog",
        "sweep::cpu",
        "sweep::gpu::GpuEngine",
        "sweep::cpu::x",
    ] {
        assert!(joined.contains(expected), "{expected} not in {joined:?}");
    }
    assert!(!joined.iter().any(|p| p.starts_with("b")), "{joined:?}");
}
