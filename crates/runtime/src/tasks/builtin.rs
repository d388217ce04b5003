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
///
/// The instance's lifecycle state decides first (`DescribeAutoScalingInstances`): AWS refuses
/// protection for an instance in a warm pool, so one there is left alone (logged); a
/// launching instance (`Pending`, `Pending:Proceed`) is waited for until it is in service,
/// bounded, as the original did; one still in `Pending:Wait` for this very event's hook
/// cannot get there before the hook is completed — the task must come after
/// `complete_lifecycle_action` — which is a permanent error naming the fix.
struct Protect(bool);

/// How long `protect_from_scale_in` waits at most for a launching instance to be in service.
const IN_SERVICE_WAIT: Duration = Duration::from_secs(120);
/// How often it looks.
const IN_SERVICE_POLL: Duration = Duration::from_secs(5);

#[async_trait]
impl Task for Protect {
    async fn run(&self, cx: &mut TaskContext<'_>) -> Result<(), Fault> {
        let instance = match &cx.event.lifecycle {
            Some(l) => l.instance_id.clone(),
            None => cx.node()?.id.clone(),
        };
        let until = cx
            .deadline
            .min_with(cx.services.clock.now(), IN_SERVICE_WAIT);
        let group = loop {
            let known = cx.services.lifecycle.instance(&instance).await?;
            let Some(known) = known else {
                // Not in a group, or an implementation that cannot tell (the recorder): the
                // event's or the node's group.
                let group = match &cx.event.lifecycle {
                    Some(l) => Some(l.auto_scaling_group.clone()),
                    None => cx.node()?.property_str("AutoScalingGroupName"),
                };
                break group.ok_or_else(|| {
                    Fault::permanent(format!(
                        "{}: instance {instance} is in no Auto Scaling group",
                        cx.name
                    ))
                })?;
            };
            let state = known.lifecycle_state.as_str();
            if state.starts_with("Warmed:") {
                tracing::info!(%instance, %state, "instance in a warm pool: scale-in protection does not apply (AWS refuses it)");
                return Ok(());
            }
            let own_hook = cx
                .event
                .lifecycle
                .as_ref()
                .is_some_and(|l| l.instance_id == instance && l.wait_state() == state);
            if own_hook && self.0 {
                return Err(Fault::permanent(format!(
                    "{}: instance {instance} is in {state} until this event's lifecycle action is completed; it can be protected only once in service: run {} after complete_lifecycle_action",
                    cx.name, cx.name
                )));
            }
            if !(self.0 && state.starts_with("Pending")) {
                break known.group;
            }
            if cx.services.clock.now() >= until {
                return Err(Fault::transient(format!(
                    "{}: instance {instance} still {state}, not in service, when the wait ran out",
                    cx.name
                )));
            }
            tracing::info!(%instance, %state, "waiting for the instance to be in service before protecting it");
            let wake = (cx.services.clock.now() + IN_SERVICE_POLL).min(until);
            cx.services.clock.sleep_until(wake).await;
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
