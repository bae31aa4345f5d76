//! The floors of `src/`: who may import whom, kept true by reading the code.
//!
//! ```text
//! main → cli → serve → services → shared machinery → ground
//! ```
//!
//! A module names only modules on the floors below its own. On its own floor it may name a
//! neighbour only where the floor says so (the shared machinery), and never in a loop; the
//! services never name each other (what two of them share moves down a floor, into a module of
//! its own), nor do the ground's modules. Inside one module the same holds between its parts:
//! its children (files or folders) name one another without a loop, while a child may use its
//! parent's items and the parent its children's.
//!
//! The test reads every `crate::…` and `super::…` path under `src/` (in `use` lines and in
//! code; comments, strings and `$crate` do not count; [`read`] is the reader) and fails naming
//! the file and line of each one that breaks the rule. A new top-level module fails it until it
//! is given a floor in [`FLOORS`].
mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use read::{ModPath, Use, read_crate};

/// One floor: its modules (top-level, as `src/NAME.rs` or `src/NAME/`), and whether they may
/// name one another (without a loop).
struct Floor {
    name: &'static str,
    modules: &'static [&'static str],
    neighbours: bool,
}

/// The floors, top first. A new module goes on the lowest floor whose modules it needs are
/// all below it: a service among the services, a piece two services share on the machinery
/// floor, a value parser or a counter on the ground.
const FLOORS: &[Floor] = &[
    Floor {
        name: "main",
        modules: &["main"],
        neighbours: false,
    },
    Floor {
        // The command line, and the fuzz targets' entry points (used by fuzz/ only).
        name: "cli",
        modules: &["cli", "fuzzing"],
        neighbours: false,
    },
    Floor {
        name: "serve",
        modules: &["serve"],
        neighbours: false,
    },
    Floor {
        name: "services",
        // (forward and proxy are on their way.)
        modules: &[
            "echo", "time", "netcat", "exec", "files", "chat", "msg", "http", "ipcalc", "bench",
            "wormhole", "forward", "proxy",
        ],
        neighbours: false,
    },
    Floor {
        name: "shared machinery",
        modules: &[
            "server",
            "secure",
            "auth",
            "framing",
            "tty",
            "retry",
            "names",
            "tls",
            "transport",
            "pump",
            "proxy_wire",
            "web",
        ],
        neighbours: true,
    },
    Floor {
        name: "ground",
        modules: &["log", "metrics", "flags", "addr", "sys"],
        neighbours: false,
    },
];

/// Where a module sits: the index of its floor in [`FLOORS`] (0 on top).
fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.modules.contains(&module))
}

#[test]
fn every_import_goes_down_a_floor_and_none_closes_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (modules, uses) = read_crate(&src);
    let mut errors = Vec::new();
    for m in modules.keys().filter(|m| m.len() == 1) {
        if floor_of(&m[0]).is_none() {
            errors.push(format!(
                "src/{}: module `{}` is on no floor: add it to FLOORS in tests/layers/main.rs \
                 (a service among the services, what services share on the machinery floor)",
                modules[m].display(),
                m[0]
            ));
        }
    }
    // Between top-level modules: down a floor, or to a neighbour where the floor allows it.
    let mut neighbours: Vec<(String, String, &Use)> = Vec::new();
    for u in &uses {
        let (from, to) = (&u.from[0], &u.to[0]);
        if from == to || !modules.contains_key(&vec![to.clone()]) {
            continue;
        }
        let (Some(a), Some(b)) = (floor_of(from), floor_of(to)) else {
            continue;
        };
        let at = format!("src/{}:{}", u.file.display(), u.line);
        if b < a {
            errors.push(format!(
                "{at}: `{from}` ({}) names `{}` ({}), a floor above it: take it as a plain \
                 value, or move what both need down",
                FLOORS[a].name,
                u.to.join("::"),
                FLOORS[b].name
            ));
        } else if b == a && !FLOORS[a].neighbours {
            errors.push(format!(
                "{at}: `{from}` names `{}`, its neighbour on the {} floor: what they share \
                 moves down a floor, into a module of its own",
                u.to.join("::"),
                FLOORS[a].name
            ));
        } else if b == a {
            neighbours.push((from.clone(), to.clone(), u));
        }
    }
    errors.dedup(); // one line per `use` line, however many names it imports
    errors.extend(loops(&neighbours, "top-level modules"));
    // Inside each module: its children name one another without a loop.
    let mut parts: BTreeMap<ModPath, Vec<(String, String, &Use)>> = BTreeMap::new();
    for u in uses.iter().filter(|u| u.from[0] == u.to[0]) {
        let common = u.from.iter().zip(&u.to).take_while(|(a, b)| a == b).count();
        if common == u.from.len() || common == u.to.len() {
            continue; // a module and its own ancestor or descendant
        }
        let parent = u.from[..common].to_vec();
        let edge = (u.from[common].clone(), u.to[common].clone(), u);
        parts.entry(parent).or_default().push(edge);
    }
    for (parent, edges) in &parts {
        errors.extend(loops(
            edges,
            &format!("the parts of `{}`", parent.join("::")),
        ));
    }
    assert!(
        errors.is_empty(),
        "{} import(s) break the floors (see tests/layers/main.rs):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// Every loop among `edges` (from, to, where), one error each, naming the lines that close it.
fn loops(edges: &[(String, String, &Use)], among: &str) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeMap<&str, &Use>> = BTreeMap::new();
    for (a, b, u) in edges {
        graph.entry(a).or_default().entry(b).or_insert(u);
    }
    let mut errors = Vec::new();
    let mut reported = BTreeSet::new();
    for &start in graph.keys() {
        // Depth-first from `start`, looking for a way back to it.
        let mut stack = vec![(start, vec![start])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for (&next, _) in graph.get(node).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    let key: BTreeSet<&str> = cycle.iter().copied().collect();
                    if reported.insert(key) {
                        cycle.push(start);
                        let mut msg = format!("a loop among {among}: {}", cycle.join(" → "));
                        for w in cycle.windows(2) {
                            let u = graph[w[0]][w[1]];
                            let _ = write!(
                                msg,
                                "\n    src/{}:{}: {} names {}",
                                u.file.display(),
                                u.line,
                                u.from.join("::"),
                                u.to.join("::")
                            );
                        }
                        errors.push(msg);
                    }
                } else if seen.insert(next) {
                    let mut p = path.clone();
                    p.push(next);
                    stack.push((next, p));
                }
            }
        }
    }
    errors
}
