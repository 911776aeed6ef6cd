//! The source tree's layering, as README's layout table describes it: lower modules
//! (names, URIs, sockets, NAPTR, the configuration, zones, the store) never import
//! higher ones (the keeper, resolution, DNS, SIP, the admin API), modules of one layer
//! never import each other, and no two files import each other, directly or round a
//! longer cycle. Read from the sources (`use crate::…`, `super::…`, a `mod.rs` naming
//! its children), tests left out, so a change that breaks the layering fails here with
//! the offending import named.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may import only modules of a
/// lower layer (and its own files).
const LAYERS: &[&[&str]] = &[
    &["name", "uri", "net", "metrics"],
    &["naptr"],
    &["config"],
    &["logging", "zone", "store", "registrar", "client"],
    &["keeper", "resolve"],
    &["dns", "sip", "admin"],
    &["server"],
    &["lib"],
];

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
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

/// The library's files (the binary's `main.rs` and `cli/` sit above everything) and the
/// modules each imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .into_iter()
        .map(|p| (module_of(&p), p))
        .filter(|(m, _)| m != "main" && !m.starts_with("cli"))
        .collect();
    // The longest module that a path names (`zone::index::Lookup` → `zone::index`).
    let owner = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains_key(m))
    };
    let use_tree = Regex::new(r"\buse\s+((?:crate|super|self)::[^;]*);").unwrap();
    let crate_path = Regex::new(r"\bcrate::((?:\w+::)*\w+)").unwrap();
    let super_path = Regex::new(r"\bsuper::((?:\w+::)*\w+)").unwrap();
    let child_path = Regex::new(r"(?:^|[^:\w])(\w+)::").unwrap();
    let comment = Regex::new(r"//.*").unwrap();
    let mut graph = BTreeMap::new();
    for (module, path) in &modules {
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let code = comment.replace_all(code, "");
        let is_dir = path.ends_with("mod.rs") || module == "lib";
        // Every path named: `use` trees expanded (`use crate::{a::B, c}`), then any
        // path written out in the code.
        let mut paths = Vec::new();
        for c in use_tree.captures_iter(&code) {
            expand_use("", &c[1], &mut paths);
        }
        let code = use_tree.replace_all(&code, "");
        paths.extend(crate_path.find_iter(&code).map(|m| m.as_str().to_string()));
        paths.extend(super_path.find_iter(&code).map(|m| m.as_str().to_string()));
        let mut to = BTreeSet::new();
        for p in &paths {
            if let Some(rest) = p.strip_prefix("crate::") {
                to.extend(owner(rest));
            } else if let Some(rest) = p.strip_prefix("super::") {
                let up = parent(module);
                let full = if up.is_empty() {
                    rest.to_string()
                } else {
                    format!("{up}::{rest}")
                };
                to.extend(owner(&full).or_else(|| (!up.is_empty()).then(|| up.to_string())));
            } else if let Some(rest) = p.strip_prefix("self::").filter(|_| is_dir) {
                to.extend(owner(&format!("{module}::{rest}")));
            }
        }
        if is_dir && module != "lib" {
            for c in child_path.captures_iter(&code) {
                let child = format!("{module}::{}", &c[1]);
                if modules.contains_key(&child) {
                    to.insert(child);
                }
            }
        }
        to.remove(module);
        graph.insert(module.clone(), to);
    }
    graph
}

/// Appends every path a `use` tree names: `a::{b::C, d::{self, E}}` gives `a::b::C`,
/// `a::d`, `a::d::E`.
fn expand_use(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        let full = format!("{prefix}{path}");
        out.push(full.strip_suffix("::self").unwrap_or(&full).to_string());
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = tree[open + 1..]
        .trim_end()
        .strip_suffix('}')
        .unwrap_or(&tree[open + 1..]);
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_use(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        expand_use(&head, &inner[start..], out);
    }
}

fn parent(module: &str) -> &str {
    module.rsplit_once("::").map_or("", |(p, _)| p)
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let mut wrong = Vec::new();
    for (from, tos) in imports() {
        let Some(l) = layer(top(&from)) else {
            wrong.push(format!("{from}: not in any layer of tests/layout.rs"));
            continue;
        };
        for to in tos.iter().filter(|to| top(to) != top(&from)) {
            match layer(top(to)) {
                Some(m) if m < l => {}
                _ => wrong.push(format!("{from} imports {to}")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_two_files_import_each_other() {
    let graph = imports();
    let cycles = strongly_connected(&graph);
    assert!(cycles.is_empty(), "import cycles between files: {cycles:?}");
}

/// The groups of modules that reach each other (Tarjan), those of more than one.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, (usize, usize)>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, (i, i));
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.index[w].1.min(s.index[v].1);
                s.index.get_mut(v).unwrap().1 = low;
            } else if s.stack.contains(&w) {
                let low = s.index[w].0.min(s.index[v].1);
                s.index.get_mut(v).unwrap().1 = low;
            }
        }
        if s.index[v].0 == s.index[v].1 {
            let at = s.stack.iter().rposition(|x| *x == v).unwrap();
            let group: Vec<String> = s.stack.drain(at..).map(str::to_string).collect();
            if group.len() > 1 {
                s.found.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}
