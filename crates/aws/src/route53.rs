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
}
