//! `ec2_snapshot`: snapshots a volume of the node's instance (by id or device name), tagged,
//! optionally waiting (bounded) until it completes and storing its id in a node property.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::template;
use crate::config::template::Template;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    #[serde(default)]
    volume_id: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    wait_seconds: u64,
    #[serde(default)]
    property: Option<String>,
}

/// Which volume to snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Volume {
    /// A volume id (`vol-...`).
    Id(Template),
    /// The device name the volume is attached as (`/dev/xvdf`).
    Device(Template),
}

/// A checked `ec2_snapshot` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Ec2Snapshot {
    /// The volume.
    pub volume: Volume,
    /// The snapshot's description.
    pub description: Template,
    /// Tags, in name order.
    pub tags: Vec<(String, Template)>,
    /// How long to wait at most for the snapshot to complete (zero: do not wait).
    pub wait: Duration,
    /// The node property that receives the snapshot id, if any.
    pub property: Option<String>,
}

impl Ec2Snapshot {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        // A volume named by id needs no node (a scheduled event has none), so neither does
        // its default description.
        let default_description = if p.device.is_some() {
            "{event.name}: {node.Ident}"
        } else {
            "{event.name}"
        };
        let volume = match (p.volume_id, p.device) {
            (Some(v), None) => template(&v, &[], "volume_id").map(Volume::Id),
            (None, Some(d)) => template(&d, &[], "device").map(Volume::Device),
            _ => Err(vec!["give exactly one of `volume_id`, `device`".into()]),
        };
        let description = template(
            p.description.as_deref().unwrap_or(default_description),
            &[],
            "description",
        );
        let mut tags = Vec::new();
        for (k, v) in p.tags {
            match template(&v, &[], &format!("tags.{k}")) {
                Ok(t) => tags.push((k, t)),
                Err(e) => errors.extend(e),
            }
        }
        match (volume, description) {
            (Ok(volume), Ok(description)) if errors.is_empty() => Ok(Ec2Snapshot {
                volume,
                description,
                tags,
                wait: Duration::from_secs(p.wait_seconds),
                property: p.property,
            }),
            (volume, description) => {
                errors.extend(volume.err().unwrap_or_default());
                errors.extend(description.err().unwrap_or_default());
                Err(errors)
            }
        }
    }
}
