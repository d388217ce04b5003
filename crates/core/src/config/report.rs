//! `report:` — the built-in SNS reporting (SPEC 5), configured once at the top level:
//!
//! ```yaml
//! report:
//!   topic_arn: arn:aws:sns:eu-west-1:123456789012:lifecycle
//!   subject: "{event.name}: {node.Ident}"   # optional
//! ```
//!
//! After each event that moved a node or met an error (ignored ones included), one summary
//! goes to the topic: the event, the node with its properties (secrets masked), the states
//! passed, the tasks run, every error with its trigger and task, how processing stopped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::template::Template;

/// The checked `report:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReportSpec {
    /// The topic (placeholders allowed, e.g. `{metadata.topic}`).
    pub topic_arn: Template,
    /// The subject; `None`: the event's name, node and states.
    pub subject: Option<Template>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    topic_arn: String,
    subject: Option<String>,
}

/// Checks a `report:` value.
///
/// # Errors
/// A message naming what is wrong: an unknown key, a missing or empty `topic_arn`, a bad
/// placeholder.
pub(crate) fn compile(value: &Value) -> Result<ReportSpec, String> {
    let raw: RawReport = serde_json::from_value(value.clone())
        .map_err(|e| format!("{e} (expected `topic_arn` and an optional `subject`)"))?;
    if raw.topic_arn.trim().is_empty() {
        return Err("`topic_arn` must name a topic".into());
    }
    let topic_arn = Template::parse(&raw.topic_arn, &[])?;
    let subject = raw
        .subject
        .as_deref()
        .map(|s| Template::parse(s, &[]))
        .transpose()?;
    Ok(ReportSpec { topic_arn, subject })
}
