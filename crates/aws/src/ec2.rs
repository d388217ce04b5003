//! [`Ec2Snapshots`]: EBS snapshots of a node's volumes (feature `ec2`).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{ResourceType, SnapshotState, Tag, TagSpecification};
use lifecycle::Fault;
use lifecycle_runtime::capability::{SnapshotRequest, Snapshots, VolumeRef};
use lifecycle_runtime::{Clock, poll_until};

use crate::error::fault;

/// How often a snapshot's state is polled.
const SNAPSHOT_POLL: Duration = Duration::from_secs(15);

/// EC2 through the AWS SDK.
#[derive(Clone)]
pub struct Ec2Snapshots {
    client: Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ec2Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Snapshots").finish_non_exhaustive()
    }
}

/// `/dev/xvdf`, `/dev/sdf`, `xvdf` and `sdf` name the same device: Xen's `xvd` prefix is an
/// alias of `sd` in EC2's block device mappings.
fn same_device(a: &str, b: &str) -> bool {
    let norm = |d: &str| {
        let d = d.trim_start_matches("/dev/");
        match d.strip_prefix("xvd") {
            Some(rest) => format!("sd{rest}"),
            None => d.to_owned(),
        }
    };
    norm(a) == norm(b)
}

impl Ec2Snapshots {
    /// EC2 on `config`, waiting with `clock`.
    pub fn new(config: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Self {
        Ec2Snapshots {
            client: Client::new(config),
            clock,
        }
    }

    /// `Break` once the snapshot is completed, `Continue` while it is pending; a permanent
    /// fault when it failed.
    async fn snapshot_state(&self, snapshot_id: &str) -> Result<ControlFlow<()>, Fault> {
        let out = self
            .client
            .describe_snapshots()
            .snapshot_ids(snapshot_id)
            .send()
            .await
            .map_err(|e| fault("DescribeSnapshots", &e))?;
        let snapshot = out.snapshots().first();
        match snapshot.and_then(|s| s.state()) {
            Some(SnapshotState::Completed) => Ok(ControlFlow::Break(())),
            Some(SnapshotState::Error) => Err(Fault::permanent(format!(
                "snapshot {snapshot_id} failed: {}",
                snapshot
                    .and_then(|s| s.state_message())
                    .unwrap_or("no reason given")
            ))),
            _ => Ok(ControlFlow::Continue(())),
        }
    }

    async fn volume_at(&self, instance: &str, device: &str) -> Result<String, Fault> {
        let out = self
            .client
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .map_err(|e| fault("DescribeInstances", &e))?;
        let mappings = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.instance_id() == Some(instance))
            .flat_map(|i| i.block_device_mappings());
        let mut seen = Vec::new();
        for m in mappings {
            let name = m.device_name().unwrap_or_default();
            if same_device(name, device)
                && let Some(volume) = m.ebs().and_then(|e| e.volume_id())
            {
                return Ok(volume.to_owned());
            }
            seen.push(name.to_owned());
        }
        Err(Fault::permanent(format!(
            "instance {instance} has no EBS volume at {device} (devices: {})",
            if seen.is_empty() {
                "none".into()
            } else {
                seen.join(", ")
            }
        )))
    }
}

#[async_trait]
impl Snapshots for Ec2Snapshots {
    async fn create(&self, request: &SnapshotRequest) -> Result<String, Fault> {
        let volume = match &request.volume {
            VolumeRef::Id(id) => id.expose().to_owned(),
            VolumeRef::Device {
                instance_id,
                device,
            } => self.volume_at(instance_id, device.expose()).await?,
        };
        let tags = request
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Vec<_>>();
        let mut req = self
            .client
            .create_snapshot()
            .volume_id(&volume)
            .description(&request.description);
        if !tags.is_empty() {
            req = req.tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(tags))
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| fault("CreateSnapshot", &e))?;
        out.snapshot_id()
            .map(str::to_owned)
            .ok_or_else(|| Fault::transient("CreateSnapshot: the answer has no snapshot id"))
    }

    async fn wait_completed(&self, snapshot_id: &str, until: SystemTime) -> Result<(), Fault> {
        let waited = poll_until(self.clock.as_ref(), until, SNAPSHOT_POLL, || {
            self.snapshot_state(snapshot_id)
        })
        .await?;
        waited.map_err(|()| {
            Fault::transient(format!(
                "snapshot {snapshot_id} not completed when the wait ran out"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_and_scsi_device_names_are_one_device() {
        assert!(same_device("/dev/xvdf", "/dev/sdf"));
        assert!(same_device("sdf", "/dev/xvdf"));
        assert!(!same_device("/dev/sdf", "/dev/sdg"));
    }
}
