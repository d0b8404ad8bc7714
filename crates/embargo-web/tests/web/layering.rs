//! The web crate's modules have no import circle (ARCHITECTURE.md, "embargo-web"): every
//! `crate::module` path in `src/` is an edge, and the graph must be acyclic.

use std::collections::{BTreeMap, BTreeSet};

/// Module → the crate modules it names (`use crate::x`, `crate::x::y` anywhere).
fn module_graph(src: &std::path::Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut uses = BTreeSet::new();
        for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                // `crate::{a, b}` names several modules.
                let rest = &line[at + "crate::".len()..];
                let names: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                    None => vec![rest],
                };
                for name in names {
                    let name: String =
                        name.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !name.is_empty() && name != module && name != "self" {
                        uses.insert(name);
                    }
                }
            }
        }
        graph.insert(module, uses);
    }
    // Only edges to modules (not to items of lib.rs such as `crate::CSP`).
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|m| modules.contains(m) && m != "lib");
    }
    graph
}

/// A circle in the graph, if there is one, as the path around it.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_web_crate_has_no_import_circles() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    // The graph is read: the handlers use the layers below them.
    assert!(graph["api"].contains("auth") && graph["api"].contains("extract"), "{graph:?}");
    assert!(graph["auth"].contains("error"), "{graph:?}");
    assert_eq!(find_circle(&graph), None, "an import circle: {graph:#?}");
    // The lowest layer stands alone.
    assert!(graph["error"].is_empty(), "error.rs uses {:?}", graph["error"]);
    // And a circle is found when there is one.
    let mut circular = graph.clone();
    circular.get_mut("error").unwrap().insert("api".into());
    let circle = find_circle(&circular).expect("the added edge closes a circle");
    assert_eq!(circle.first(), circle.last());
    assert!(circle.contains(&"error".to_owned()) && circle.contains(&"api".to_owned()), "{circle:?}");
}
