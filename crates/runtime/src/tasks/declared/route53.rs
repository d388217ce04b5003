//! `route53`: renders the record changes and applies them as one batch, or defers them.
//! Rendered names and values stay [`Sensitive`](lifecycle::Sensitive) down to the DNS call:
//! only Route 53 gets the real text.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::Route53;

use super::{resolve, values};
use crate::capability::RecordChange;
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for Route53 {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let aliases = resolve(cx, &self.aliases).await?;
        let v = values(cx, &aliases);
        let zone = self.zone_id.render(&v)?;
        let mut changes = Vec::with_capacity(self.records.len());
        for r in &self.records {
            changes.push(RecordChange {
                action: r.action,
                name: r.name.render(&v)?,
                record_type: r.record_type.clone(),
                ttl: r.ttl,
                values: r
                    .values
                    .iter()
                    .map(|t| t.render(&v))
                    .collect::<Result<_, _>>()?,
            });
        }
        if self.defer {
            let deferred: &mut BTreeMap<_, Vec<_>> = &mut cx.scratch.dns;
            deferred.entry(zone).or_default().extend(changes);
            Ok(())
        } else {
            cx.services
                .dns
                .change(&zone, &changes)
                .await
                .map_err(|e| e.scrubbed(sent(&zone, &changes)))
        }
    }
}

/// Every rendered value of a batch: what an error of the DNS call must not echo.
pub(in crate::tasks) fn sent<'a>(
    zone: &'a lifecycle::Sensitive,
    changes: &'a [RecordChange],
) -> impl Iterator<Item = &'a lifecycle::Sensitive> + Clone {
    std::iter::once(zone).chain(
        changes
            .iter()
            .flat_map(|c| std::iter::once(&c.name).chain(c.values.iter())),
    )
}
