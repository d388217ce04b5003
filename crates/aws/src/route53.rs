//! [`Route53Dns`]: DNS record changes as one Route 53 change batch.

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use lifecycle::config::declared::RecordAction;
use lifecycle::{Fault, Sensitive};
use lifecycle_runtime::capability::{Dns, RecordChange};

use crate::error::{fault, permanent};

/// Route 53 through the AWS SDK.
#[derive(Debug, Clone)]
pub struct Route53Dns {
    client: Client,
}

impl Route53Dns {
    /// Route 53 on `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Route53Dns {
            client: Client::new(config),
        }
    }

    /// Route 53 with an existing client.
    pub fn with_client(client: Client) -> Self {
        Route53Dns { client }
    }
}

fn build(c: &RecordChange) -> Result<Change, Fault> {
    let bad = |e: aws_sdk_route53::error::BuildError| permanent("ChangeResourceRecordSets", e);
    let records = c
        .values
        .iter()
        .map(|v| {
            ResourceRecord::builder()
                .value(v.expose())
                .build()
                .map_err(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let set = ResourceRecordSet::builder()
        .name(c.name.expose())
        .r#type(RrType::from(c.record_type.as_str()))
        .ttl(c.ttl)
        .set_resource_records(Some(records))
        .build()
        .map_err(bad)?;
    let action = match c.action {
        RecordAction::Upsert => ChangeAction::Upsert,
        RecordAction::Delete => ChangeAction::Delete,
    };
    Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(bad)
}

#[async_trait]
impl Dns for Route53Dns {
    async fn change(&self, zone_id: &Sensitive, changes: &[RecordChange]) -> Result<(), Fault> {
        let zone = zone_id.expose().trim_start_matches("/hostedzone/");
        let result = self.apply(zone, changes).await;
        let Err(e) = result else {
            return Ok(());
        };
        // Deleting a record that is already gone succeeds (SPEC 9): a redelivered termination
        // must not fail on its own earlier DELETE. AWS refuses the whole batch
        // (`InvalidChangeBatch`); the DELETEs whose record set is gone are dropped, and the
        // rest is sent again once. A DELETE whose record is there with other values is still
        // refused: that record is not ours to remove.
        let deletes = changes.iter().any(|c| c.action == RecordAction::Delete);
        if e.code() != Some("InvalidChangeBatch") || !deletes {
            return Err(e);
        }
        let mut remaining = Vec::with_capacity(changes.len());
        for c in changes {
            if c.action == RecordAction::Delete && !self.exists(zone, c).await? {
                tracing::info!(name = %c.name.shown(), r#type = %c.record_type, "record to delete is already gone: nothing to delete");
                continue;
            }
            remaining.push(c.clone());
        }
        if remaining.len() == changes.len() {
            return Err(e);
        }
        if remaining.is_empty() {
            return Ok(());
        }
        self.apply(zone, &remaining).await
    }
}

impl Route53Dns {
    async fn apply(&self, zone: &str, changes: &[RecordChange]) -> Result<(), Fault> {
        let changes = changes.iter().map(build).collect::<Result<Vec<_>, _>>()?;
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .build()
            .map_err(|e| permanent("ChangeResourceRecordSets", e))?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| fault("ChangeResourceRecordSets", &e))?;
        Ok(())
    }

    /// True when the zone holds a record set of `c`'s name and type, whatever its values.
    async fn exists(&self, zone: &str, c: &RecordChange) -> Result<bool, Fault> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(c.name.expose())
            .start_record_type(RrType::from(c.record_type.as_str()))
            .max_items(1)
            .send()
            .await
            .map_err(|e| fault("ListResourceRecordSets", &e))?;
        let Some(set) = out.resource_record_sets().first() else {
            return Ok(false);
        };
        Ok(dns_name(set.name()) == dns_name(c.name.expose())
            && set.r#type().as_str() == c.record_type)
    }
}

/// A DNS name as Route 53 compares it: lower case, with the final dot.
fn dns_name(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') {
        name
    } else {
        format!("{name}.")
    }
}
