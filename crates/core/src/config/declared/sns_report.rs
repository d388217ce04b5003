//! `sns_report`: publishes a report of the event (node properties redacted) to a topic.

use serde::{Deserialize, Serialize};

use super::template;
use crate::config::template::Template;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    topic_arn: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// A checked `sns_report` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SnsReport {
    /// The topic.
    pub topic_arn: Template,
    /// The subject (cut to SNS's 100 characters when sent).
    pub subject: Template,
    /// The message; `None`: a JSON summary of the event and its node.
    pub message: Option<Template>,
}

impl SnsReport {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let topic_arn = template(&p.topic_arn, &[], "topic_arn");
        let subject = template(
            p.subject.as_deref().unwrap_or("{event.name}"),
            &[],
            "subject",
        );
        let message = p
            .message
            .as_deref()
            .map(|m| template(m, &[], "message"))
            .transpose();
        match (topic_arn, subject, message) {
            (Ok(topic_arn), Ok(subject), Ok(message)) => Ok(SnsReport {
                topic_arn,
                subject,
                message,
            }),
            (a, b, c) => Err([a.err(), b.err(), c.err()]
                .into_iter()
                .flatten()
                .flatten()
                .collect()),
        }
    }
}
