//! The AWS capabilities tasks use, one small trait each, and [`Recorder`]: the embedded
//! implementation of all of them, which performs nothing and records the AWS call it would
//! have made (used by `lifecycle simulate` and by tests).
//!
//! The AWS crate implements the same traits with the AWS SDK for Rust.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use crate::event::LifecycleData;
use crate::redact::Sensitive;
use crate::tasks::TaskError;

/// What a lifecycle action is completed with (SPEC 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LifecycleResult {
    /// `CONTINUE`: let the launch or termination proceed.
    #[serde(rename = "CONTINUE")]
    Continue,
    /// `ABANDON`: a launch is abandoned (the instance is terminated).
    #[serde(rename = "ABANDON")]
    Abandon,
}

impl LifecycleResult {
    /// The AWS string.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleResult::Continue => "CONTINUE",
            LifecycleResult::Abandon => "ABANDON",
        }
    }
}

/// What became of a completion or heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ActionState {
    /// AWS accepted it.
    Done,
    /// AWS says there is no active lifecycle action (already completed, or expired): nothing
    /// to do, and not a failure.
    NoActiveAction,
}

/// Auto Scaling lifecycle actions and instance protection.
#[async_trait]
pub trait LifecycleActions: Send + Sync {
    /// `CompleteLifecycleAction`, by token when there is one, else by instance id.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn complete(
        &self,
        data: &LifecycleData,
        result: LifecycleResult,
    ) -> Result<ActionState, TaskError>;

    /// `RecordLifecycleActionHeartbeat`: keeps a waiting lifecycle action alive.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, TaskError>;

    /// Waits until the scaling activity of the instance reaches 100 %, at the latest `until`.
    ///
    /// # Errors
    /// A retryable [`TaskError`] when `until` passes first.
    async fn wait_for_activity(
        &self,
        data: &LifecycleData,
        until: SystemTime,
    ) -> Result<(), TaskError>;

    /// `DescribeAutoScalingInstances`: the group an instance belongs to, if any.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn group_of(&self, instance_id: &str) -> Result<Option<String>, TaskError>;

    /// `SetInstanceProtection` for scale-in.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn set_protection(
        &self,
        group: &str,
        instance_ids: &[String],
        protected: bool,
    ) -> Result<(), TaskError>;
}

/// The first line of every shell command the library sends: a shell comment that the
/// command's status event carries back in its `parameters`, so that a status event that
/// arrives before its command record is stored is recognised as ours and waited for.
pub const COMMAND_MARKER: &str = "# sent by autoscaling-lifecycle";

/// A shell command to run on instances through SSM.
#[derive(Debug, Clone, PartialEq)]
pub struct ShellCommand {
    /// Target instances.
    pub instance_ids: Vec<String>,
    /// The shell lines; secret values are masked in their shown form.
    pub commands: Vec<Sensitive>,
    /// The comment (at most 100 characters, as SSM allows).
    pub comment: String,
    /// A key that is the same when the same task sends the same command for the same event:
    /// lets an implementation recognise a redelivered event.
    pub idempotency_key: String,
}

/// Sending shell commands to instances (SSM Run Command).
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Waits until the SSM agent of every instance is online, at the latest `until`.
    ///
    /// # Errors
    /// A retryable [`TaskError`] when `until` passes first.
    async fn wait_online(
        &self,
        instance_ids: &[String],
        until: SystemTime,
    ) -> Result<(), TaskError>;

    /// Sends the command; returns the command id.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn send(&self, command: &ShellCommand) -> Result<String, TaskError>;
}

/// What to do with a DNS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordAction {
    /// Create or replace.
    #[serde(rename = "UPSERT")]
    Upsert,
    /// Delete (the values and TTL must match the record).
    #[serde(rename = "DELETE")]
    Delete,
}

/// One DNS record change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordChange {
    /// UPSERT or DELETE.
    pub action: RecordAction,
    /// Fully qualified name.
    pub name: String,
    /// Record type (`A`, `AAAA`, `CNAME`, `TXT`, ...).
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds.
    pub ttl: i64,
    /// Values.
    pub values: Vec<String>,
}

/// DNS changes (Route 53): one change batch per call.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Applies `changes` to the hosted zone as one batch.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> Result<(), TaskError>;
}

/// Reports (SNS).
#[async_trait]
pub trait Reporter: Send + Sync {
    /// Publishes a message to a topic.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help.
    async fn publish(&self, topic_arn: &str, subject: &str, message: &str)
    -> Result<(), TaskError>;
}

/// Which volume of an instance to snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum VolumeRef {
    /// A volume id (`vol-...`).
    Id(String),
    /// The device name the volume is attached as (`/dev/xvdf`), looked up on the instance.
    Device(String),
}

/// An EBS snapshot to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The instance the volume belongs to.
    pub instance_id: String,
    /// The volume.
    pub volume: VolumeRef,
    /// The snapshot's description.
    pub description: String,
    /// Tags for the snapshot, in order.
    pub tags: Vec<(String, String)>,
}

/// EBS snapshots (EC2).
#[async_trait]
pub trait Snapshots: Send + Sync {
    /// Starts a snapshot of the volume, tagged; returns the snapshot id.
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help; a device the instance does not
    /// have cannot be fixed by one.
    async fn create(&self, request: &SnapshotRequest) -> Result<String, TaskError>;

    /// Waits until the snapshot is completed, at the latest `until`.
    ///
    /// # Errors
    /// A retryable [`TaskError`] when `until` passes first; a non-retryable one when the
    /// snapshot failed.
    async fn wait_completed(&self, snapshot_id: &str, until: SystemTime) -> Result<(), TaskError>;
}

/// Reading secret values (SSM Parameter Store), e.g. a join token into a node property.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// The value of parameter `name`, decrypted when `decrypt` (a `SecureString`).
    ///
    /// # Errors
    /// A [`TaskError`] that says whether a retry can help; a missing parameter cannot.
    async fn read(&self, name: &str, decrypt: bool) -> Result<String, TaskError>;
}

/// One AWS call that would have been made, as the embedded [`Recorder`] saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// The service, e.g. `autoscaling`, `ssm`, `route53`, `sns`.
    pub service: &'static str,
    /// The API operation, e.g. `CompleteLifecycleAction`.
    pub operation: &'static str,
    /// Its input, with secret values masked.
    pub input: Value,
}

/// The embedded implementation of every capability: records each call instead of making it.
/// Cheap to clone; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recorder {
    /// The calls recorded so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, service: &'static str, operation: &'static str, input: Value) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call {
                service,
                operation,
                input,
            });
        }
    }
}

/// A deterministic, UUID-shaped id derived from `key` (FNV-1a, 128 bits): the same key gives
/// the same id in every run, so a simulated command can be answered by a status event
/// written in advance.
pub fn derived_id(key: &str) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in key.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[async_trait]
impl LifecycleActions for Recorder {
    async fn complete(
        &self,
        data: &LifecycleData,
        result: LifecycleResult,
    ) -> Result<ActionState, TaskError> {
        let mut input = json!({
            "AutoScalingGroupName": data.auto_scaling_group,
            "LifecycleHookName": data.hook_name,
            "LifecycleActionResult": result.as_str(),
        });
        match &data.token {
            Some(t) => input["LifecycleActionToken"] = json!(t),
            None => input["InstanceId"] = json!(data.instance_id),
        }
        self.record("autoscaling", "CompleteLifecycleAction", input);
        Ok(ActionState::Done)
    }

    async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, TaskError> {
        let mut input = json!({
            "AutoScalingGroupName": data.auto_scaling_group,
            "LifecycleHookName": data.hook_name,
        });
        match &data.token {
            Some(t) => input["LifecycleActionToken"] = json!(t),
            None => input["InstanceId"] = json!(data.instance_id),
        }
        self.record("autoscaling", "RecordLifecycleActionHeartbeat", input);
        Ok(ActionState::Done)
    }

    async fn wait_for_activity(
        &self,
        data: &LifecycleData,
        _until: SystemTime,
    ) -> Result<(), TaskError> {
        self.record(
            "autoscaling",
            "DescribeScalingActivities",
            json!({"AutoScalingGroupName": data.auto_scaling_group}),
        );
        Ok(())
    }

    async fn group_of(&self, instance_id: &str) -> Result<Option<String>, TaskError> {
        self.record(
            "autoscaling",
            "DescribeAutoScalingInstances",
            json!({"InstanceIds": [instance_id]}),
        );
        Ok(None)
    }

    async fn set_protection(
        &self,
        group: &str,
        instance_ids: &[String],
        protected: bool,
    ) -> Result<(), TaskError> {
        self.record(
            "autoscaling",
            "SetInstanceProtection",
            json!({
                "AutoScalingGroupName": group,
                "InstanceIds": instance_ids,
                "ProtectedFromScaleIn": protected,
            }),
        );
        Ok(())
    }
}

#[async_trait]
impl CommandRunner for Recorder {
    async fn wait_online(
        &self,
        instance_ids: &[String],
        _until: SystemTime,
    ) -> Result<(), TaskError> {
        self.record(
            "ssm",
            "DescribeInstanceInformation",
            json!({"Filters": [{"Key": "InstanceIds", "Values": instance_ids}]}),
        );
        Ok(())
    }

    async fn send(&self, command: &ShellCommand) -> Result<String, TaskError> {
        let id = derived_id(&command.idempotency_key);
        let shown: Vec<&str> = command.commands.iter().map(Sensitive::shown).collect();
        self.record(
            "ssm",
            "SendCommand",
            json!({
                "DocumentName": "AWS-RunShellScript",
                "InstanceIds": command.instance_ids,
                "Comment": command.comment,
                "Parameters": {"commands": shown},
                "CommandId": id,
            }),
        );
        Ok(id)
    }
}

#[async_trait]
impl Dns for Recorder {
    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> Result<(), TaskError> {
        let changes: Vec<Value> = changes
            .iter()
            .map(|c| {
                json!({
                    "Action": c.action,
                    "ResourceRecordSet": {
                        "Name": c.name,
                        "Type": c.record_type,
                        "TTL": c.ttl,
                        "ResourceRecords": c.values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>(),
                    }
                })
            })
            .collect();
        self.record(
            "route53",
            "ChangeResourceRecordSets",
            json!({"HostedZoneId": zone_id, "ChangeBatch": {"Changes": changes}}),
        );
        Ok(())
    }
}

#[async_trait]
impl Snapshots for Recorder {
    async fn create(&self, request: &SnapshotRequest) -> Result<String, TaskError> {
        let volume = match &request.volume {
            VolumeRef::Id(id) => id.clone(),
            VolumeRef::Device(device) => {
                self.record(
                    "ec2",
                    "DescribeInstances",
                    json!({"InstanceIds": [request.instance_id]}),
                );
                format!("(volume at {device})")
            }
        };
        let tags: Vec<Value> = request
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        let id = format!(
            "snap-{}",
            &derived_id(&format!("{}/{volume}", request.instance_id)).replace('-', "")[..17]
        );
        self.record(
            "ec2",
            "CreateSnapshot",
            json!({
                "VolumeId": volume,
                "Description": request.description,
                "TagSpecifications": [{"ResourceType": "snapshot", "Tags": tags}],
                "SnapshotId": id,
            }),
        );
        Ok(id)
    }

    async fn wait_completed(&self, snapshot_id: &str, _until: SystemTime) -> Result<(), TaskError> {
        self.record(
            "ec2",
            "DescribeSnapshots",
            json!({"SnapshotIds": [snapshot_id]}),
        );
        Ok(())
    }
}

/// The recorder's stand-in for a parameter's value: it names the parameter, so a simulation
/// shows which value would have been used without any secret existing.
pub fn simulated_parameter(name: &str) -> String {
    format!("simulated-value-of:{name}")
}

#[async_trait]
impl Secrets for Recorder {
    async fn read(&self, name: &str, decrypt: bool) -> Result<String, TaskError> {
        self.record(
            "ssm",
            "GetParameter",
            json!({"Name": name, "WithDecryption": decrypt}),
        );
        Ok(simulated_parameter(name))
    }
}

#[async_trait]
impl Reporter for Recorder {
    async fn publish(
        &self,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> Result<(), TaskError> {
        self.record(
            "sns",
            "Publish",
            json!({"TopicArn": topic_arn, "Subject": subject, "Message": message}),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_uuid_shaped() {
        let a = derived_id("evt-1/join/i-1");
        assert_eq!(a, derived_id("evt-1/join/i-1"));
        assert_ne!(a, derived_id("evt-2/join/i-1"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}

/// Every capability a task may use, held as shared trait objects.
#[derive(Clone)]
pub struct Services {
    /// Nodes.
    pub nodes: Arc<dyn crate::store::NodeStore>,
    /// Command records.
    pub commands: Arc<dyn crate::store::CommandStore>,
    /// Auto Scaling.
    pub lifecycle: Arc<dyn LifecycleActions>,
    /// SSM Run Command.
    pub runner: Arc<dyn CommandRunner>,
    /// Route 53.
    pub dns: Arc<dyn Dns>,
    /// SNS.
    pub reporter: Arc<dyn Reporter>,
    /// SSM Parameter Store.
    pub secrets: Arc<dyn Secrets>,
    /// EBS snapshots; `None` in a build without EC2 support.
    pub snapshots: Option<Arc<dyn Snapshots>>,
    /// Time.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Which properties are secret.
    pub redactor: crate::redact::Redactor,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// The embedded services: a local store and a [`Recorder`] for every AWS capability.
    pub fn embedded(
        store: crate::store::LocalStore,
        recorder: Recorder,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Services {
            nodes: Arc::new(store.clone()),
            commands: Arc::new(store),
            lifecycle: Arc::new(recorder.clone()),
            runner: Arc::new(recorder.clone()),
            dns: Arc::new(recorder.clone()),
            secrets: Arc::new(recorder.clone()),
            snapshots: Some(Arc::new(recorder.clone())),
            reporter: Arc::new(recorder),
            clock,
            redactor: crate::redact::Redactor::default(),
        }
    }
}
