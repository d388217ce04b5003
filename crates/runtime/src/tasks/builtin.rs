//! The runtime's side of the built-in names (SPEC 5): the tasks, and the event predicates
//! (evaluated by the core's [`Predicate::eval`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lifecycle::Fault;
use lifecycle::config::{BuiltinTask, Predicate};
use lifecycle::event::{LifecycleData, LifecycleResult};

use super::{Condition, Task, TaskContext};
use crate::capability::ActionState;

/// How long `complete_lifecycle_action` waits at most for a launch's scaling activity
/// (the invocation's deadline bounds it further).
const ACTIVITY_WAIT: Duration = Duration::from_secs(120);

/// The task a built-in name stands for.
pub(super) fn task(b: BuiltinTask) -> Arc<dyn Task> {
    match b {
        BuiltinTask::CompleteLifecycleAction => Arc::new(CompleteLifecycleAction),
        BuiltinTask::RecordLifecycleActionHeartbeat => Arc::new(Heartbeat),
        BuiltinTask::RemoveFromDb => Arc::new(RemoveFromDb),
        BuiltinTask::ProtectFromScaleIn => Arc::new(Protect(true)),
        BuiltinTask::UnprotectFromScaleIn => Arc::new(Protect(false)),
        BuiltinTask::ApplyDnsChanges => Arc::new(ApplyDns),
    }
}

/// The condition a predicate name stands for.
pub(super) fn condition(p: Predicate) -> Arc<dyn Condition> {
    Arc::new(PredicateCondition(p))
}

fn lifecycle<'a>(cx: &'a TaskContext<'_>) -> Result<&'a LifecycleData, Fault> {
    cx.event.lifecycle.as_ref().ok_or_else(|| {
        Fault::permanent(format!(
            "{}: event {:?} has no lifecycle data",
            cx.name, cx.event.name
        ))
    })
}

/// `complete_lifecycle_action`: completes the hook with the lifecycle result; after a launch
/// that continues, waits (bounded) for the instance's scaling activity to finish.
struct CompleteLifecycleAction;

#[async_trait]
impl Task for CompleteLifecycleAction {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let data = lifecycle(cx)?;
        let result = cx.lifecycle_result();
        match cx.services.lifecycle.complete(data, result).await? {
            ActionState::Done => {}
            ActionState::NoActiveAction => {
                tracing::warn!(
                    instance = %data.instance_id,
                    "no active lifecycle action (already completed or expired); nothing to complete"
                );
                return Ok(());
            }
        }
        // Best effort (SPEC 5): AWS has accepted the launch; an activity that stays below 100 %
        // (instance warm-up, load balancer checks) or a throttled poll is worth a warning,
        // never a failure — failure handling would ABANDON an action that is no longer there.
        if cx.event.is_launching() && result == LifecycleResult::Continue {
            let until = cx.deadline.min_with(cx.services.clock.now(), ACTIVITY_WAIT);
            if let Err(e) = cx.services.lifecycle.wait_for_activity(data, until).await {
                tracing::warn!(instance = %data.instance_id, error = %e, "the launch was completed; its scaling activity is not done yet");
            }
        }
        Ok(())
    }
}

/// `record_lifecycle_action_heartbeat`: extends the hook's timeout.
struct Heartbeat;

#[async_trait]
impl Task for Heartbeat {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let data = lifecycle(cx)?;
        cx.services.lifecycle.heartbeat(data).await?;
        Ok(())
    }
}

/// `remove_from_db`: removes the node, leaving a tombstone so a late event does not bring it
/// back (SPEC 9); later state changes of this event stay in memory.
struct RemoveFromDb;

#[async_trait]
impl Task for RemoveFromDb {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let id = cx.node()?.id.clone();
        let until = cx.services.clock.now() + cx.rules.tombstone;
        cx.services.nodes.remove(&id, until).await?;
        cx.resource.persisted = false;
        Ok(())
    }
}

/// `protect_from_scale_in` / `unprotect_from_scale_in`: instance protection for the node.
struct Protect(bool);

#[async_trait]
impl Task for Protect {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let (group, instance) = match &cx.event.lifecycle {
            Some(l) => (l.auto_scaling_group.clone(), l.instance_id.clone()),
            None => {
                let node = cx.node()?;
                let id = node.id.clone();
                let group = match node.property_str("AutoScalingGroupName") {
                    Some(g) => g,
                    None => cx.services.lifecycle.group_of(&id).await?.ok_or_else(|| {
                        Fault::permanent(format!(
                            "{}: instance {id} is in no Auto Scaling group",
                            cx.name
                        ))
                    })?,
                };
                (group, id)
            }
        };
        cx.services
            .lifecycle
            .set_protection(&group, &[instance], self.0)
            .await
    }
}

/// `apply_dns_changes`: applies the DNS changes collected so far, one batch per zone.
struct ApplyDns;

#[async_trait]
impl Task for ApplyDns {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let batches = std::mem::take(&mut cx.scratch.dns);
        for (zone, changes) in &batches {
            if !changes.is_empty() {
                cx.services
                    .dns
                    .change(zone, changes)
                    .await
                    .map_err(|e| e.scrubbed(super::declared::sent(zone, changes)))?;
            }
        }
        Ok(())
    }
}

/// An event predicate.
struct PredicateCondition(Predicate);

#[async_trait]
impl Condition for PredicateCondition {
    async fn check(&self, cx: &mut TaskContext<'_>) -> Result<bool, Fault> {
        Ok(self
            .0
            .eval(cx.event, cx.event_failed, cx.resource.node.as_ref()))
    }
}
