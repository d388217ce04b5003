//! The state diagram of a [`Definition`], as Mermaid or Graphviz dot.

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
    let mut s = String::new();
    match format {
        Format::Mermaid => {
            s.push_str("stateDiagram-v2\n");
            let ids = mermaid_ids(def);
            let id = |state: StateId| ids[state.index()].as_str();
            for (i, state) in def.states().iter().enumerate() {
                let _ = writeln!(s, "    {}: {}", ids[i], state);
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
        }
        Format::Dot => {
            s.push_str(
                "digraph lifecycle {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n",
            );
            s.push_str("    __start [shape=point];\n");
            for state in def.states() {
                let _ = writeln!(s, "    {};", dot_quote(state));
            }
            let _ = writeln!(s, "    __start -> {};", dot_quote(def.initial_state()));
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
