//! [`Recorder`]: the embedded implementation of every AWS capability, which performs nothing
//! and records the call it would have made (`lifecycle simulate`, tests).
//!
//! The record is shown (it becomes a report's `calls`), so it holds only the shown form of
//! every [`Sensitive`] value: a secret never reaches it (SPEC 9).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use lifecycle::event::{LifecycleData, LifecycleResult, LifecycleTransition};
use lifecycle::reconcile::{Hook, Instance, PENDING_WAIT, TERMINATING_WAIT};
use lifecycle::{Fault, Sensitive};
use lifecycle_runtime::Call;
use lifecycle_runtime::capability::{
    ActionState, CommandRunner, Dns, GroupInstance, LifecycleActions, RecordChange, Reporter,
    Secrets, ShellCommand, SnapshotRequest, Snapshots, VolumeRef,
};
use serde_json::{Value, json};

/// The embedded implementation of every capability: records each call instead of making it.
/// Cheap to clone; clones share the record.
///
/// Auto Scaling groups can be scripted ([`Recorder::script_group`]): their instances and
/// hooks are then what the group listings, lookups and hook reads answer, and a completion
/// moves a waiting instance on as AWS would (`Pending:Wait` → `InService` or `Terminating`,
/// `Terminating:Wait` → `Terminating:Proceed`); a completion or heartbeat for a scripted
/// instance that waits on nothing is [`ActionState::NoActiveAction`]. Without a script,
/// every group is unknown and every completion succeeds (`lifecycle simulate`).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    fleet: Arc<Mutex<Fleet>>,
}

/// Scripted Auto Scaling groups.
#[derive(Debug, Default)]
struct Fleet {
    groups: std::collections::BTreeSet<String>,
    instances: Vec<Instance>,
    hooks: Vec<Hook>,
}

impl Recorder {
    /// Scripts group `group`: its instances (their `group` is set to it) and its hooks,
    /// replacing what was scripted for it.
    pub fn script_group(&self, group: &str, instances: Vec<Instance>, hooks: Vec<Hook>) {
        if let Ok(mut fleet) = self.fleet.lock() {
            fleet.groups.insert(group.to_owned());
            fleet.instances.retain(|i| i.group != group);
            fleet.hooks.retain(|h| h.group != group);
            fleet.instances.extend(instances.into_iter().map(|mut i| {
                i.group = group.to_owned();
                i
            }));
            fleet.hooks.extend(hooks.into_iter().map(|mut h| {
                h.group = group.to_owned();
                h
            }));
        }
    }

    /// A scripted instance's lifecycle state, if it is scripted.
    pub fn lifecycle_state(&self, instance_id: &str) -> Option<String> {
        let fleet = self.fleet.lock().ok()?;
        fleet
            .instances
            .iter()
            .find(|i| i.id == instance_id)
            .map(|i| i.lifecycle_state.clone())
    }

    /// For a scripted instance: whether it waits on `data`'s action, moving it on by
    /// `result` when it does and `result` is given. `None` when the instance is not
    /// scripted.
    fn act_on(&self, data: &LifecycleData, result: Option<LifecycleResult>) -> Option<ActionState> {
        let mut fleet = self.fleet.lock().ok()?;
        let instance = fleet
            .instances
            .iter_mut()
            .find(|i| i.id == data.instance_id && i.group == data.auto_scaling_group)?;
        let waiting = match data.transition {
            LifecycleTransition::Launching => PENDING_WAIT,
            LifecycleTransition::Terminating => TERMINATING_WAIT,
        };
        if instance.lifecycle_state != waiting {
            return Some(ActionState::NoActiveAction);
        }
        if let Some(result) = result {
            instance.lifecycle_state = match (data.transition, result) {
                (LifecycleTransition::Launching, LifecycleResult::Continue) => "InService",
                (LifecycleTransition::Launching, LifecycleResult::Abandon) => "Terminating",
                (LifecycleTransition::Terminating, _) => "Terminating:Proceed",
            }
            .to_owned();
        }
        Some(ActionState::Done)
    }

    /// The calls recorded so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The calls of one operation (e.g. `Publish`) recorded so far, in order.
    pub fn calls_to(&self, operation: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.operation == operation)
            .collect()
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
    ) -> Result<ActionState, Fault> {
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
        Ok(self.act_on(data, Some(result)).unwrap_or(ActionState::Done))
    }

    async fn heartbeat(&self, data: &LifecycleData) -> Result<ActionState, Fault> {
        let mut input = json!({
            "AutoScalingGroupName": data.auto_scaling_group,
            "LifecycleHookName": data.hook_name,
        });
        match &data.token {
            Some(t) => input["LifecycleActionToken"] = json!(t),
            None => input["InstanceId"] = json!(data.instance_id),
        }
        self.record("autoscaling", "RecordLifecycleActionHeartbeat", input);
        Ok(self.act_on(data, None).unwrap_or(ActionState::Done))
    }

    async fn wait_for_activity(
        &self,
        data: &LifecycleData,
        _until: SystemTime,
    ) -> Result<(), Fault> {
        self.record(
            "autoscaling",
            "DescribeScalingActivities",
            json!({"AutoScalingGroupName": data.auto_scaling_group}),
        );
        Ok(())
    }

    /// A scripted hook's timeout; an unscripted hook has none (and this read is not
    /// recorded), so no error is handled early for it in a simulation.
    async fn heartbeat_timeout(
        &self,
        group: &str,
        hook: &str,
    ) -> Result<Option<std::time::Duration>, Fault> {
        Ok(self.fleet.lock().ok().and_then(|f| {
            f.hooks
                .iter()
                .find(|h| h.group == group && h.name == hook)
                .and_then(|h| h.heartbeat_timeout)
        }))
    }

    async fn instance(&self, instance_id: &str) -> Result<Option<GroupInstance>, Fault> {
        self.record(
            "autoscaling",
            "DescribeAutoScalingInstances",
            json!({"InstanceIds": [instance_id]}),
        );
        Ok(self.fleet.lock().ok().and_then(|f| {
            f.instances
                .iter()
                .find(|i| i.id == instance_id)
                .map(|i| GroupInstance {
                    group: i.group.clone(),
                    lifecycle_state: i.lifecycle_state.clone(),
                })
        }))
    }

    async fn instances(&self, instance_ids: &[String]) -> Result<Vec<Instance>, Fault> {
        self.record(
            "autoscaling",
            "DescribeAutoScalingInstances",
            json!({"InstanceIds": instance_ids}),
        );
        Ok(self.fleet.lock().map_or_else(
            |_| Vec::new(),
            |f| {
                f.instances
                    .iter()
                    .filter(|i| instance_ids.contains(&i.id))
                    .cloned()
                    .collect()
            },
        ))
    }

    async fn group_instances(&self, group: &str) -> Result<Vec<Instance>, Fault> {
        self.record(
            "autoscaling",
            "DescribeAutoScalingGroups",
            json!({"AutoScalingGroupNames": [group]}),
        );
        let fleet = self
            .fleet
            .lock()
            .map_err(|_| Fault::transient("the scripted fleet is poisoned"))?;
        if !fleet.groups.contains(group) {
            return Err(Fault::permanent(format!(
                "DescribeAutoScalingGroups: there is no Auto Scaling group {group:?}"
            )));
        }
        Ok(fleet
            .instances
            .iter()
            .filter(|i| i.group == group)
            .cloned()
            .collect())
    }

    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, Fault> {
        self.record(
            "autoscaling",
            "DescribeLifecycleHooks",
            json!({"AutoScalingGroupName": group}),
        );
        Ok(self.fleet.lock().map_or_else(
            |_| Vec::new(),
            |f| {
                f.hooks
                    .iter()
                    .filter(|h| h.group == group)
                    .cloned()
                    .collect()
            },
        ))
    }

    async fn set_protection(
        &self,
        group: &str,
        instance_ids: &[String],
        protected: bool,
    ) -> Result<(), Fault> {
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
    async fn wait_online(&self, instance_ids: &[String], _until: SystemTime) -> Result<(), Fault> {
        self.record(
            "ssm",
            "DescribeInstanceInformation",
            json!({"Filters": [{"Key": "InstanceIds", "Values": instance_ids}]}),
        );
        Ok(())
    }

    async fn send(&self, command: &ShellCommand) -> Result<String, Fault> {
        let id = derived_id(&command.idempotency_key);
        let shown: Vec<&str> = command.commands.iter().map(Sensitive::shown).collect();
        let mut parameters = json!({"commands": shown});
        // The runner's default applies when the task sets none: only what the task set shows.
        if let Some(t) = command.execution_timeout {
            parameters["executionTimeout"] = json!([t.as_secs().to_string()]);
        }
        self.record(
            "ssm",
            "SendCommand",
            json!({
                "DocumentName": "AWS-RunShellScript",
                "InstanceIds": command.instance_ids,
                "Comment": command.comment,
                "Parameters": parameters,
                "CommandId": id,
            }),
        );
        Ok(id)
    }

    async fn find_sent(&self, instance_ids: &[String], key: &str) -> Result<Option<String>, Fault> {
        let line = lifecycle::delivery::key_line(key);
        Ok(self.calls().iter().rev().find_map(|c| {
            let input = &c.input;
            let ours = c.operation == "SendCommand"
                && input["InstanceIds"] == json!(instance_ids)
                && input["Parameters"]["commands"][1] == json!(line);
            ours.then(|| input["CommandId"].as_str().map(str::to_owned))
                .flatten()
        }))
    }
}

#[async_trait]
impl Dns for Recorder {
    async fn change(&self, zone_id: &Sensitive, changes: &[RecordChange]) -> Result<(), Fault> {
        let changes: Vec<Value> = changes
            .iter()
            .map(|c| {
                json!({
                    "Action": c.action,
                    "ResourceRecordSet": {
                        "Name": c.name.shown(),
                        "Type": c.record_type,
                        "TTL": c.ttl,
                        "ResourceRecords": c.values.iter().map(|v| json!({"Value": v.shown()})).collect::<Vec<_>>(),
                    }
                })
            })
            .collect();
        self.record(
            "route53",
            "ChangeResourceRecordSets",
            json!({"HostedZoneId": zone_id.shown(), "ChangeBatch": {"Changes": changes}}),
        );
        Ok(())
    }
}

#[async_trait]
impl Snapshots for Recorder {
    async fn create(&self, request: &SnapshotRequest) -> Result<String, Fault> {
        let volume = match &request.volume {
            VolumeRef::Id(id) => id.shown().to_owned(),
            VolumeRef::Device {
                instance_id,
                device,
            } => {
                self.record(
                    "ec2",
                    "DescribeInstances",
                    json!({"InstanceIds": [instance_id]}),
                );
                // `device` shows its masked form.
                format!("(volume at {device} of {instance_id})")
            }
        };
        let tags: Vec<Value> = request
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        let id = format!("snap-{}", &derived_id(&volume).replace('-', "")[..17]);
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

    async fn wait_completed(&self, snapshot_id: &str, _until: SystemTime) -> Result<(), Fault> {
        self.record(
            "ec2",
            "DescribeSnapshots",
            json!({"SnapshotIds": [snapshot_id]}),
        );
        Ok(())
    }
}

/// The recorder's stand-in for a parameter's value: it names the parameter (its shown form),
/// so a simulation shows which value would have been used without any secret existing. A
/// decrypted one is secret all the same: reports show it masked.
pub fn simulated_parameter(name: &str) -> String {
    format!("simulated-value-of:{name}")
}

#[async_trait]
impl Secrets for Recorder {
    async fn read(&self, name: &Sensitive, decrypt: bool) -> Result<String, Fault> {
        self.record(
            "ssm",
            "GetParameter",
            json!({"Name": name.shown(), "WithDecryption": decrypt}),
        );
        Ok(simulated_parameter(name.shown()))
    }
}

#[async_trait]
impl Reporter for Recorder {
    async fn publish(
        &self,
        topic_arn: &Sensitive,
        subject: &str,
        message: &str,
    ) -> Result<(), Fault> {
        self.record(
            "sns",
            "Publish",
            json!({"TopicArn": topic_arn.shown(), "Subject": subject, "Message": message}),
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
