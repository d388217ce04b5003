//! The state diagram of a [`Definition`], as Mermaid or Graphviz dot — with, when given, the
//! number of nodes in each state and the stuck ones marked (`lifecycle graph --table`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::config::{Definition, StateId};

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid `stateDiagram-v2`.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// How many nodes are in one state, and how many of them need a look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCount {
    /// Nodes in the state.
    pub nodes: usize,
    /// Of those, the stuck ones (in `failure`, a dead invocation's lease, transient faults in
    /// a row).
    pub stuck: usize,
}

/// A state's label: its name, then its nodes when counted.
fn label(state: &str, count: Option<&StateCount>) -> String {
    match count {
        None => state.to_owned(),
        Some(c) if c.stuck > 0 => format!("{state} · {} ({} stuck)", c.nodes, c.stuck),
        Some(c) => format!("{state} · {}", c.nodes),
    }
}

/// One edge: from, to (`None`: internal), trigger names.
fn edges(def: &Definition) -> Vec<(StateId, Option<StateId>, String)> {
    let mut out = Vec::new();
    for t in def.transitions() {
        let names: Vec<&str> = t.triggers.iter().map(|g| g.name.as_str()).collect();
        let label = names.join(" / ");
        for s in &t.sources {
            out.push((*s, t.dest, label.clone()));
        }
    }
    out
}

/// Mermaid state ids may contain only letters, digits and `_`, and must not clash with
/// keywords: `s_` and the name with every other character as `_`. Two names that clean to the
/// same id (`a-b`, `a_b`) get `_2`, `_3`, ... in order of appearance, so no two states merge.
fn mermaid_ids(def: &Definition) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(def.states().len());
    for state in def.states() {
        let cleaned: String = state
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let base = format!("s_{cleaned}");
        let mut id = base.clone();
        let mut n = 1;
        while ids.contains(&id) {
            n += 1;
            id = format!("{base}_{n}");
        }
        ids.push(id);
    }
    ids
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Renders the state diagram: every state (with `failure`), the initial state marked, one edge
/// per transition source labelled with its triggers; internal transitions as self-loops.
pub fn render(def: &Definition, format: Format) -> String {
    render_with(def, format, &BTreeMap::new())
}

/// [`render`], each state labelled with its nodes (`counts` by state name) and the states
/// with stuck nodes marked; states that nodes are in but the configuration does not know are
/// drawn apart, marked too.
pub fn render_with(
    def: &Definition,
    format: Format,
    counts: &BTreeMap<String, StateCount>,
) -> String {
    let unknown: Vec<(&String, &StateCount)> = counts
        .iter()
        .filter(|(state, _)| def.state_id(state).is_none())
        .collect();
    let stuck = |state: &str| counts.get(state).is_some_and(|c| c.stuck > 0);
    let mut s = String::new();
    match format {
        Format::Mermaid => {
            s.push_str("stateDiagram-v2\n");
            let ids = mermaid_ids(def);
            let id = |state: StateId| ids[state.index()].as_str();
            for (i, state) in def.states().iter().enumerate() {
                let _ = writeln!(s, "    {}: {}", ids[i], label(state, counts.get(state)));
            }
            for (n, (state, count)) in unknown.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "    unknown_{n}: {} (not in the configuration)",
                    label(state, Some(count)).replace(':', " ")
                );
            }
            let _ = writeln!(s, "    [*] --> {}", id(def.initial()));
            for (from, to, label) in edges(def) {
                let to = to.unwrap_or(from);
                let _ = writeln!(
                    s,
                    "    {} --> {}: {}",
                    id(from),
                    id(to),
                    label.replace(':', " ")
                );
            }
            let marked: Vec<String> = def
                .states()
                .iter()
                .enumerate()
                .filter(|(_, state)| stuck(state))
                .map(|(i, _)| ids[i].clone())
                .chain((0..unknown.len()).map(|n| format!("unknown_{n}")))
                .collect();
            if !marked.is_empty() {
                s.push_str(
                    "    classDef stuck fill:#fdd,stroke:#c00
",
                );
                let _ = writeln!(s, "    class {} stuck", marked.join(","));
            }
        }
        Format::Dot => {
            s.push_str(
                "digraph lifecycle {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n",
            );
            s.push_str("    \"__start\" [shape=point, label=\"\"];\n");
            for state in def.states() {
                let count = counts.get(state);
                let mark = if stuck(state) { ", color=red" } else { "" };
                if count.is_some() {
                    let _ = writeln!(
                        s,
                        "    {} [label={}{mark}];",
                        dot_quote(state),
                        dot_quote(&label(state, count))
                    );
                } else {
                    let _ = writeln!(s, "    {};", dot_quote(state));
                }
            }
            for (state, count) in &unknown {
                let _ = writeln!(
                    s,
                    "    {} [label={}, color=red, style=dashed];",
                    dot_quote(state),
                    dot_quote(&format!(
                        "{} (not in the configuration)",
                        label(state, Some(count))
                    ))
                );
            }
            let _ = writeln!(s, "    \"__start\" -> {};", dot_quote(def.initial_state()));
            for (from, to, label) in edges(def) {
                let style = if to.is_none() { ", style=dashed" } else { "" };
                let _ = writeln!(
                    s,
                    "    {} -> {} [label={}{style}];",
                    dot_quote(def.state_name(from)),
                    dot_quote(def.state_name(to.unwrap_or(from))),
                    dot_quote(&label)
                );
            }
            s.push_str("}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_and_dot_name_every_state_and_edge() {
        let def = Definition::from_yaml(
            "- {source: finished_cloud_init, dest: ready, triggers: [{name: join}, {name: retry}]}\n- {source: ready, dest: null, triggers: [{name: refresh}]}"
        )
        .unwrap();
        let m = render(&def, Format::Mermaid);
        assert!(m.contains("[*] --> s_finished_cloud_init"));
        assert!(m.contains("s_finished_cloud_init --> s_ready: join / retry"));
        assert!(m.contains("s_ready --> s_ready: refresh"));
        assert!(m.contains("s_failure: failure"));
        let d = render(&def, Format::Dot);
        assert!(d.contains("\"ready\" -> \"ready\" [label=\"refresh\", style=dashed];"));
        assert!(d.starts_with("digraph lifecycle {"));
    }

    #[test]
    fn counts_label_the_states_and_stuck_ones_are_marked() {
        let def =
            Definition::from_yaml("- {source: joining, dest: ready, triggers: [{name: join}]}")
                .unwrap();
        let counts = BTreeMap::from([
            ("joining".to_owned(), StateCount { nodes: 3, stuck: 1 }),
            ("ready".to_owned(), StateCount { nodes: 5, stuck: 0 }),
            ("draining".to_owned(), StateCount { nodes: 1, stuck: 0 }),
        ]);
        let m = render_with(&def, Format::Mermaid, &counts);
        assert!(m.contains("s_joining: joining · 3 (1 stuck)"), "{m}");
        assert!(m.contains("s_ready: ready · 5\n"), "{m}");
        assert!(
            m.contains("unknown_0: draining · 1 (not in the configuration)"),
            "{m}"
        );
        assert!(m.contains("class s_joining,unknown_0 stuck"), "{m}");
        let d = render_with(&def, Format::Dot, &counts);
        assert!(
            d.contains("\"joining\" [label=\"joining · 3 (1 stuck)\", color=red];"),
            "{d}"
        );
        assert!(d.contains("\"draining\" [label=\"draining · 1 (not in the configuration)\", color=red, style=dashed];"), "{d}");
        assert_eq!(
            render(&def, Format::Mermaid),
            render_with(&def, Format::Mermaid, &BTreeMap::new())
        );
    }

    #[test]
    fn states_whose_names_clean_alike_stay_apart() {
        let def = Definition::from_yaml(
            "- {source: a-b, dest: a_b, triggers: [{name: go}]}\n- {source: a_b, dest: a.b, triggers: [{name: on}]}",
        )
        .unwrap();
        let m = render(&def, Format::Mermaid);
        assert!(m.contains("    s_a_b: a-b\n"), "{m}");
        assert!(m.contains("    s_a_b_2: a_b\n"), "{m}");
        assert!(m.contains("    s_a_b_3: a.b\n"), "{m}");
        assert!(m.contains("s_a_b --> s_a_b_2: go"), "{m}");
        assert!(m.contains("s_a_b_2 --> s_a_b_3: on"), "{m}");
    }
}
