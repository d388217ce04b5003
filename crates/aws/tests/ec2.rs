//! EBS snapshots against moto's server (feature `ec2`; `scripts/test` builds with every
//! feature). moto implements DescribeInstances, CreateSnapshot with tags and
//! DescribeSnapshots; its snapshots complete at once.

#![cfg(feature = "ec2")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use lifecycle::{FaultKind, Sensitive};
use lifecycle_aws::Ec2Snapshots;
use lifecycle_embedded::ManualClock;
use lifecycle_runtime::Clock;
use lifecycle_runtime::capability::{SnapshotRequest, Snapshots, VolumeRef};
use support::Moto;

#[tokio::test]
async fn a_volume_found_by_device_is_snapshotted_with_tags() {
    let moto = Moto::shared();
    let config = moto.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let run = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    let instance = run.instances()[0].instance_id().unwrap().to_owned();
    let root = run.instances()[0].block_device_mappings()[0]
        .device_name()
        .unwrap()
        .to_owned();

    let clock = Arc::new(ManualClock::default());
    let snapshots = Ec2Snapshots::new(&config, clock.clone());
    let request = SnapshotRequest {
        volume: VolumeRef::Device {
            instance_id: instance.clone(),
            device: Sensitive::plain(root.replace("/dev/sd", "/dev/xvd")),
        },
        description: "backup: test".into(),
        tags: vec![
            ("Name".into(), instance.clone()),
            ("Rule".into(), "backup".into()),
        ],
    };
    let id = snapshots.create(&request).await.unwrap();
    snapshots
        .wait_completed(&id, clock.now() + Duration::from_secs(60))
        .await
        .unwrap();
    let d = ec2
        .describe_snapshots()
        .snapshot_ids(&id)
        .send()
        .await
        .unwrap();
    let s = &d.snapshots()[0];
    assert_eq!(s.description(), Some("backup: test"));
    let tags: Vec<(&str, &str)> = s
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(tags.contains(&("Rule", "backup")), "{tags:?}");

    let missing = SnapshotRequest {
        volume: VolumeRef::Device {
            instance_id: instance.clone(),
            device: Sensitive::plain("/dev/sdz"),
        },
        ..request
    };
    let e = snapshots.create(&missing).await.unwrap_err();
    assert!(
        e.kind() == FaultKind::Permanent && e.to_string().contains("no EBS volume at /dev/sdz"),
        "{e:?}"
    );
}
