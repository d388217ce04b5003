//! The state diagram of a [`Definition`], as Mermaid or Graphviz dot.

use std::fmt::Write;

use crate::config::Definition;

/// Output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid `stateDiagram-v2`.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// One edge: from, to (`None`: internal), trigger names.
fn edges(def: &Definition) -> Vec<(&str, Option<&str>, String)> {
    let mut out = Vec::new();
    for t in def.transitions() {
        let names: Vec<&str> = t.triggers.iter().map(|g| g.name.as_str()).collect();
        let label = names.join(" / ");
        for s in &t.sources {
            out.push((
                def.state_name(*s),
                t.dest.map(|d| def.state_name(d)),
                label.clone(),
            ));
        }
    }
    out
}

/// Mermaid state ids may not contain `-` or spaces and must not clash with keywords.
fn mermaid_id(state: &str) -> String {
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
    format!("s_{cleaned}")
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
            for state in def.states() {
                let _ = writeln!(s, "    {}: {}", mermaid_id(state), state);
            }
            let _ = writeln!(s, "    [*] --> {}", mermaid_id(def.initial_state()));
            for (from, to, label) in edges(def) {
                let to = to.unwrap_or(from);
                let _ = writeln!(
                    s,
                    "    {} --> {}: {}",
                    mermaid_id(from),
                    mermaid_id(to),
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
                    dot_quote(from),
                    dot_quote(to.unwrap_or(from)),
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
    use crate::tasks::Registry;

    #[test]
    fn mermaid_and_dot_name_every_state_and_edge() {
        let def = Definition::from_yaml(
            "- {source: finished_cloud_init, dest: ready, triggers: [{name: join}, {name: retry}]}\n- {source: ready, dest: null, triggers: [{name: refresh}]}",
            &Registry::builtin(),
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
}
