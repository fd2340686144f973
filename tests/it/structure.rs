//! The structure stays true: every top-level module of `src/` is in the layer list and the module
//! map of docs/architecture.md, and imports only modules of lower layers (so there is no cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn architecture() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap()
}

/// The top-level modules: `src/<name>.rs` and `src/<name>/`, but the crate roots.
fn top_level_modules() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(ROOT).join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            match name.strip_suffix(".rs") {
                Some("main" | "lib") => None,
                Some(stem) => Some(stem.to_string()),
                None if p.is_dir() => Some(name),
                None => None,
            }
        })
        .collect()
}

/// Module → its layer (1 is the bottom), from the list between `<!-- layers -->` markers.
fn layers() -> BTreeMap<String, usize> {
    let doc = architecture();
    let list = doc
        .split("<!-- layers -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- /layers -->").next())
        .expect("docs/architecture.md has the layer list");
    let mut layers = BTreeMap::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let (number, rest) = line.split_once(". ").expect("`N. modules: what they are`");
        let layer: usize = number.trim().parse().unwrap();
        let names = rest.split(':').next().unwrap();
        for name in names.split(',') {
            layers.insert(name.trim().to_string(), layer);
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its test code: a file's `#[cfg(test)] mod …` and whatever follows it, and
/// files that are test modules themselves.
fn production_code(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let in_tests = path.components().any(|c| c.as_os_str() == "proptests");
    if name == "tests.rs" || in_tests {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let cut = text
        .match_indices("#[cfg(test)]")
        .find(|(at, _)| text[at + 12..].trim_start().starts_with("mod "))
        .map_or(text.len(), |(at, _)| at);
    Some(text[..cut].to_string())
}

/// The top-level modules a piece of source names: `crate::name`, `crate::{a, b::c}`, and in a
/// folder's `mod.rs`, `super::name`.
fn named_modules(code: &str, is_folder_root: bool, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut prefixes = vec!["crate::"];
    if is_folder_root {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    named.insert(ident(item.trim()));
                }
            } else {
                named.insert(ident(rest));
            }
        }
    }
    named.retain(|n| modules.contains(n));
    named
}

/// Module → the other top-level modules its production code imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules();
    let src = Path::new(ROOT).join("src");
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        let mut uses = BTreeSet::new();
        for file in files {
            let Some(code) = production_code(&file) else {
                continue;
            };
            let folder_root = file == dir.join("mod.rs");
            uses.extend(named_modules(&code, folder_root, &modules));
        }
        uses.remove(module);
        graph.insert(module.clone(), uses);
    }
    graph
}

#[test]
fn every_module_is_in_the_layer_list_and_the_module_map() {
    let layers = layers();
    let doc = architecture();
    for module in top_level_modules() {
        assert!(
            layers.contains_key(&module),
            "`{module}` is missing from the layer list of docs/architecture.md"
        );
        let mapped =
            doc.contains(&format!("src/{module}/")) || doc.contains(&format!("src/{module}.rs"));
        assert!(
            mapped,
            "`src/{module}` is missing from the module map of docs/architecture.md"
        );
    }
    for listed in layers.keys() {
        assert!(
            top_level_modules().contains(listed),
            "the layer list names `{listed}`, which is not a module of src/"
        );
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let layers = layers();
    let mut wrong = Vec::new();
    for (module, uses) in imports() {
        let own = layers[&module];
        for used in uses {
            let theirs = layers[&used];
            if theirs >= own {
                wrong.push(format!(
                    "{module} (layer {own}) imports {used} (layer {theirs})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_import_scan_sees_what_it_should() {
    let modules: BTreeSet<String> = ["stats", "gateway", "routing"]
        .into_iter()
        .map(String::from)
        .collect();
    let code = "use crate::{stats::Stats, gateway};\nfn f() { super::routing::x(); }\n";
    let named = named_modules(code, true, &modules);
    assert_eq!(named, modules);
    assert!(
        named_modules(code, false, &modules).len() == 2,
        "super:: only in a folder's root"
    );
}
