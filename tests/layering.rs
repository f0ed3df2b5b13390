//! The layering ARCHITECTURE.md documents, checked against the code's own imports.
//!
//! Every module of each crate has a layer; a file may use what lies in a lower layer of its
//! crate and what lies in its own top-level module, nothing above. No two files may import
//! each other (directly or round a longer circle), and no source file outside the
//! conformance suites may grow past 700 lines. The check reads `use crate::...`,
//! `use super::...` and inline `crate::...` paths as text (comments skipped), which is all it
//! needs: a path that names a module resolves to that module's file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate: its source root and the layer of each top-level module (higher may use lower).
struct Crate {
    root: &'static str,
    layers: &'static [(&'static str, u8)],
}

/// The documented layers (ARCHITECTURE.md, "Which folder may import which").
const CRATES: &[Crate] = &[
    Crate {
        root: "storage-node/src",
        layers: &[
            ("error", 0),
            ("types", 1),
            ("auth", 1),
            ("tls", 1),
            ("trace", 1),
            ("worker", 1),
            ("frame", 2),
            ("listen", 2),
            ("store", 3),
            ("conformance", 4),
            ("metrics", 4),
            ("state", 5),
            ("raw", 6),
            ("client", 7),
            ("http", 8),
            ("maintenance", 8),
            ("node", 9),
            ("lib", 10),
        ],
    },
    Crate {
        root: "coordinator/src",
        layers: &[
            ("error", 0),
            ("names", 1),
            ("layout", 1),
            ("codec", 1),
            ("secrets", 1),
            ("placement", 1),
            ("meta", 2),
            ("cluster", 3),
            ("config", 4),
            ("registry", 4),
            ("metrics", 4),
            ("data", 5),
            ("maintenance", 6),
            ("state", 7),
            ("edge", 8),
            ("server", 9),
            ("lib", 10),
        ],
    },
    Crate {
        root: "src",
        layers: &[
            ("sign", 0),
            ("bench", 1),
            ("local", 1),
            ("lib", 2),
            ("cli", 3),
            ("main", 4),
        ],
    },
];

/// Files allowed past [`MAX_LINES`]: the conformance suites, one test per behaviour.
const LONG_ALLOWED: &[&str] = &["coordinator/src/meta/conformance.rs"];

const MAX_LINES: usize = 700;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of `file` under `root` (`data/put.rs` -> `["data", "put"]`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file that holds module `path` (the longest prefix of it that is a module).
fn file_of(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

/// Source text without comments and without the unit tests at the end of a file (a test may
/// use a test suite from anywhere).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path `file` (module `me`) names: `crate::a::b`, `super::x`, and the paths
/// inside `use crate::{a::b, c}` groups.
fn imports(code: &str, me: &[String], is_mod_file: bool) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    // The module `super` means: the parent of a file module, or of a mod.rs's own module.
    let parent: Vec<String> = if is_mod_file || me.is_empty() {
        me[..me.len().saturating_sub(1)].to_vec()
    } else {
        me[..me.len() - 1].to_vec()
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for (anchor, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code;
        while let Some(i) = rest.find(anchor) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + anchor.len()..];
            if before.is_some_and(|c| ident(c) || c == ':') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::b, c::{d, e}}`: the first segment of every item.
                let end = group.find(';').unwrap_or(group.len());
                let mut depth = 0;
                let mut item = String::new();
                for ch in group[..end].chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_path(&mut out, &base, &item);
                            item.clear();
                        }
                        _ => item.push(ch),
                    }
                }
                push_path(&mut out, &base, &item);
                continue;
            }
            let end = rest
                .find(|c: char| !(ident(c) || c == ':'))
                .unwrap_or(rest.len());
            push_path(&mut out, &base, &rest[..end]);
        }
    }
    out
}

fn push_path(out: &mut BTreeSet<Vec<String>>, base: &[String], item: &str) {
    let mut path = base.to_vec();
    path.extend(
        item.trim()
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "self" && *s != "*" && !s.starts_with('{'))
            .map(str::to_string),
    );
    if path.len() > base.len() {
        out.insert(path);
    }
}

struct Graph {
    /// Crate-relative display name of each module file.
    names: BTreeMap<Vec<String>, String>,
    /// module file -> module files it imports.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph(c: &Crate) -> Graph {
    let root = workspace().join(c.root);
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let mut files = BTreeMap::new();
    for f in &paths {
        files.insert(module_of(&root, f), f.clone());
    }
    let mut edges = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (m, f) in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let is_mod = f.file_name().is_some_and(|n| n == "mod.rs");
        let mut to = BTreeSet::new();
        for p in imports(&code_of(&text), m, is_mod) {
            if let Some(target) = file_of(&files, &p) {
                if &target != m && !m.starts_with(&target) {
                    to.insert(target);
                }
            }
        }
        names.insert(
            m.clone(),
            format!("{}/{}", c.root, f.strip_prefix(&root).unwrap().display()),
        );
        edges.insert(m.clone(), to);
    }
    Graph { names, edges }
}

fn layer(c: &Crate, m: &[String]) -> u8 {
    let top = m.first().map_or("lib", String::as_str);
    c.layers
        .iter()
        .find(|(n, _)| *n == top)
        .unwrap_or_else(|| panic!("{}: module {top} has no layer in tests/layering.rs", c.root))
        .1
}

/// Imports that go up a layer, or sideways between top-level modules of one layer.
fn upward(c: &Crate, g: &Graph) -> Vec<String> {
    let mut bad = Vec::new();
    for (from, tos) in &g.edges {
        for to in tos {
            let (lf, lt) = (layer(c, from), layer(c, to));
            let same_top = from.first() == to.first();
            if !same_top && lt >= lf {
                bad.push(format!("{} -> {}", g.names[from], g.names[to]));
            }
        }
    }
    bad
}

/// Files that import each other, directly or round a circle (each circle once).
fn circles(g: &Graph) -> Vec<String> {
    // Tarjan's strongly connected components.
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        out: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Vec<String>) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in &t.g.edges[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[w].min(t.low[v]);
                t.low.insert(v, l);
            } else if t.on.contains(w) {
                let l = t.index[w].min(t.low[v]);
                t.low.insert(v, l);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.edges.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
        .iter()
        .map(|c| {
            let mut n: Vec<&str> = c.iter().map(|m| g.names[*m].as_str()).collect();
            n.sort();
            n.join(" <-> ")
        })
        .collect()
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let mut bad = Vec::new();
    for c in CRATES {
        let g = graph(c);
        // The check reads real imports: every crate's files name many modules.
        let edges: usize = g.edges.values().map(BTreeSet::len).sum();
        assert!(
            edges * 2 > g.edges.len(),
            "{}: only {edges} imports read",
            c.root
        );
        bad.extend(upward(c, &g));
    }
    assert!(
        bad.is_empty(),
        "imports against the documented layering (ARCHITECTURE.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let mut bad = Vec::new();
    for c in CRATES {
        bad.extend(circles(&graph(c)));
    }
    assert!(bad.is_empty(), "import circles:\n{}", bad.join("\n"));
}

#[test]
fn source_files_stay_readable_in_one_sitting() {
    let mut long = Vec::new();
    for c in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace().join(c.root), &mut files);
        for f in files {
            let rel = f.strip_prefix(workspace()).unwrap().display().to_string();
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_LINES && !LONG_ALLOWED.contains(&rel.as_str()) {
                long.push(format!("{rel}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Types named alike in two places make every mention ambiguous to a reader (two `Cluster`s,
/// two `Layout`s): each type name is declared once in the three crates (the crates' `Result`
/// aliases aside).
#[test]
fn no_two_types_share_a_name() {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace().join(c.root), &mut files);
        for f in files {
            let rel = f.strip_prefix(workspace()).unwrap().display().to_string();
            let text = std::fs::read_to_string(&f).unwrap();
            // Top-level declarations only (associated types and types inside functions are
            // indented).
            for line in code_of(&text).lines().filter(|l| !l.starts_with(' ')) {
                let mut words = line.split_whitespace();
                let mut w = words.next();
                if w.is_some_and(|w| w.starts_with("pub")) {
                    w = words.next();
                }
                if !matches!(w, Some("struct" | "enum" | "trait" | "type")) {
                    continue;
                }
                let Some(name) = words.next() else { continue };
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != "Result" && !name.is_empty() {
                    seen.entry(name).or_default().push(rel.clone());
                }
            }
        }
    }
    let twice: Vec<String> = seen
        .into_iter()
        .filter(|(_, at)| at.len() > 1)
        .map(|(n, at)| format!("{n}: {}", at.join(", ")))
        .collect();
    assert!(
        twice.is_empty(),
        "type names declared twice:\n{}",
        twice.join("\n")
    );
}

/// The check itself: an upward import and a pair of files importing each other are found.
#[test]
fn the_check_finds_an_upward_import_and_a_circle() {
    let me = vec!["data".to_string(), "put".to_string()];
    let found = imports(
        &code_of("use crate::state::Coordinator; // crate::edge\nuse super::{pack, get::X};"),
        &me,
        false,
    );
    let want: BTreeSet<Vec<String>> = [
        vec!["state", "Coordinator"],
        vec!["data", "pack"],
        vec!["data", "get", "X"],
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    assert_eq!(found, want);
    let coordinator = &CRATES[1];
    let m = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
    let g = Graph {
        names: [m("data/put"), m("data/pack"), m("state")]
            .into_iter()
            .map(|k| (k.clone(), k.join("/")))
            .collect(),
        edges: [
            (m("data/put"), [m("state"), m("data/pack")].into()),
            (m("data/pack"), [m("data/put")].into()),
            (m("state"), BTreeSet::new()),
        ]
        .into(),
    };
    assert_eq!(upward(coordinator, &g), vec!["data/put -> state"]);
    assert_eq!(circles(&g), vec!["data/pack <-> data/put"]);
}
