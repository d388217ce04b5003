//! `ec2_snapshot`: starts a tagged snapshot, waits for it (bounded) when asked, and keeps its
//! id on the node when asked.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::declared::{Ec2Snapshot, Volume};
use serde_json::{Map, Value};

use super::values;
use crate::capability::{SnapshotRequest, VolumeRef};
use crate::tasks::{Task, TaskContext};

#[async_trait]
impl Task for Ec2Snapshot {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let snapshots = cx.services.snapshots.clone().ok_or_else(|| {
            Fault::permanent(format!(
                "{}: this build has no EC2 support (build with the `ec2` feature)",
                cx.name
            ))
        })?;
        let none = BTreeMap::new();
        let v = values(cx, &none);
        let volume = match &self.volume {
            Volume::Id(t) => VolumeRef::Id(t.render(&v)?),
            Volume::Device(t) => VolumeRef::Device {
                instance_id: cx.node()?.id.clone(),
                device: t.render(&v)?,
            },
        };
        let request = SnapshotRequest {
            volume,
            description: self.description.render(&v)?.shown().to_owned(),
            tags: self
                .tags
                .iter()
                .map(|(k, t)| t.render(&v).map(|s| (k.clone(), s.shown().to_owned())))
                .collect::<Result<_, _>>()?,
        };
        let id = snapshots.create(&request).await.map_err(|e| {
            e.scrubbed(match &request.volume {
                VolumeRef::Id(s) | VolumeRef::Device { device: s, .. } => [s],
            })
        })?;
        tracing::info!(snapshot = %id, task = %cx.name, "snapshot started");
        if !self.wait.is_zero() {
            let until = cx.deadline.min_with(cx.services.clock.now(), self.wait);
            snapshots.wait_completed(&id, until).await?;
        }
        if let Some(property) = &self.property {
            let mut props = Map::new();
            props.insert(property.clone(), Value::String(id));
            cx.set_properties(props).await?;
        }
        Ok(())
    }
}
