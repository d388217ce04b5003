//! `lifecycle graph --format svg`: the dot diagram laid out and drawn in Rust
//! ([`layout-rs`](https://docs.rs/layout-rs)), so a picture of the fleet needs no Graphviz.
//! The layout is simpler than Graphviz's, and enough for a state diagram; `--format dot` stays
//! for `dot -Tsvg` where Graphviz is at hand.

use layout::backends::svg::SVGWriter;
use layout::gv::{DotParser, GraphBuilder};

/// Why the diagram could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvgError(String);

impl std::fmt::Display for SvgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the diagram could not be drawn as SVG ({}); print --format dot and render it with Graphviz (`dot -Tsvg`)",
            self.0
        )
    }
}

/// The dot text `dot` (as `lifecycle::graph` writes it) as an SVG document.
///
/// # Errors
/// The layout engine refused the text, or failed on it.
pub fn render(dot: &str) -> Result<String, SvgError> {
    // The layout engine is a library of another project: whatever it does with an unusual
    // state name is a typed error here, never a crash of the command.
    std::panic::catch_unwind(|| {
        let mut parser = DotParser::new(dot);
        let graph = parser.process().map_err(SvgError)?;
        let mut builder = GraphBuilder::new();
        builder.visit_graph(&graph);
        let mut visual = builder.get();
        let mut writer = SVGWriter::new();
        visual.do_it(false, false, false, &mut writer);
        Ok(writer.finalize())
    })
    .unwrap_or_else(|_| Err(SvgError("the layout engine failed".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_swarm_diagram_is_drawn_with_every_state_and_trigger() {
        let def = lifecycle::Definition::from_yaml(
            r"
- {source: finished_cloud_init, dest: joining, triggers: [{name: join}]}
- {source: joining, dest: ready, triggers: [{name: joined}]}
- {source: failure, dest: abandoned, triggers: [{name: give_up}]}
",
        )
        .expect("a valid definition");
        let mut counts = std::collections::BTreeMap::new();
        counts.insert(
            "joining".to_owned(),
            lifecycle::graph::StateCount { nodes: 3, stuck: 1 },
        );
        let dot = lifecycle::graph::render_with(&def, lifecycle::graph::Format::Dot, &counts);
        let svg = render(&dot).expect("drawn");
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        for text in [
            "finished_cloud_init",
            "joining",
            "ready",
            "abandoned",
            "joined",
            "give_up",
        ] {
            assert!(svg.contains(text), "{text} missing from {svg}");
        }
        assert!(render("digraph { -> }").is_err());
    }
}
