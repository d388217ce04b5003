//! `sns_report`: publishes a report of the event, node properties redacted — secret by name,
//! or recorded on the node as secret-derived (SPEC 9). A custom message and the subject are
//! sent in their shown form: an SNS message is shown to its subscribers.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::SnsReport;
use serde_json::json;

use super::values;
use crate::tasks::{Task, TaskContext};

/// SNS wants a subject of fewer than 100 characters.
const SUBJECT_MAX: usize = 99;

/// A subject SNS accepts: ASCII, no line breaks or control characters, beginning with a
/// letter, digit or punctuation, fewer than 100 characters (a longer one is cut, ending in
/// `...`). Anything else is refused with `InvalidParameter`.
pub(crate) fn subject(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            c if c.is_ascii_control() || c.is_control() => ' ',
            c if c.is_ascii() => c,
            _ => '?',
        })
        .collect();
    let cleaned = cleaned.trim();
    let cleaned = if cleaned.is_empty() {
        "autoscaling-lifecycle"
    } else {
        cleaned
    };
    if cleaned.len() <= SUBJECT_MAX {
        cleaned.to_owned()
    } else {
        format!("{}...", cleaned[..SUBJECT_MAX - 3].trim_end())
    }
}

#[async_trait]
impl Task for SnsReport {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let none = BTreeMap::new();
        let v = values(cx, &none);
        let topic = self.topic_arn.render(&v)?;
        let subject = subject(self.subject.render(&v)?.shown());
        let message = match &self.message {
            Some(t) => t.render(&v)?.shown().to_owned(),
            None => {
                let node = cx.resource.node.as_ref().map(|n| {
                    json!({
                        "Ident": n.id,
                        "ItemStatus": n.status,
                        "properties": cx.services.redactor.for_node(n).redact_map(&n.properties),
                    })
                });
                json!({
                    "event": cx.event.name,
                    "event_id": cx.event.id,
                    "failed": cx.event_failed,
                    "node": node,
                })
                .to_string()
            }
        };
        cx.services
            .reporter
            .publish(&topic, &subject, &message)
            .await
            .map_err(|e| e.scrubbed([&topic]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_what_sns_accepts() {
        assert_eq!(
            subject("EC2 Instance-launch Lifecycle Action"),
            "EC2 Instance-launch Lifecycle Action"
        );
        let long = subject(&"x".repeat(150));
        assert_eq!(long.len(), 99);
        assert!(long.ends_with("..."));
        assert_eq!(
            subject("line one\nline two\r\tend"),
            "line one line two  end"
        );
        assert_eq!(subject("caf\u{e9} \u{2192} ready"), "caf? ? ready");
        assert_eq!(subject("  \n "), "autoscaling-lifecycle");
        for s in [long, subject("a\u{0}b")] {
            assert!(
                s.len() < 100 && s.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{s:?}"
            );
        }
    }
}
