//! `sns_report`: publishes a report of the event, node properties redacted.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::SnsReport;
use serde_json::json;

use super::{truncate, values};
use crate::tasks::{Task, TaskContext};

/// SNS's limit on a subject.
const SUBJECT_MAX: usize = 100;

#[async_trait]
impl Task for SnsReport {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let none = BTreeMap::new();
        let v = values(cx, &none);
        let topic = self.topic_arn.render(&v)?.expose().to_owned();
        let subject = truncate(self.subject.render(&v)?.shown(), SUBJECT_MAX);
        let message = match &self.message {
            Some(t) => t.render(&v)?.shown().to_owned(),
            None => {
                let node = cx.resource.node.as_ref().map(|n| {
                    json!({
                        "Ident": n.id,
                        "ItemStatus": n.status,
                        "properties": cx.services.redactor.redact_map(&n.properties),
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
    }
}
