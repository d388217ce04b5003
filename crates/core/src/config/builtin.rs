//! The names every configuration may use without declaring them: the built-in tasks
//! (SPEC 5) and the event predicates (SPEC 2.3, 4.1).
//!
//! Only the names and what they mean live here; the tasks themselves run in the runtime. The
//! predicates are pure, so they are evaluated here.

use serde::Serialize;

use crate::event::Event;
use crate::node::Node;

/// A built-in task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinTask {
    /// Completes the lifecycle hook with the lifecycle result.
    CompleteLifecycleAction,
    /// Extends the lifecycle hook's timeout.
    RecordLifecycleActionHeartbeat,
    /// Deletes the node.
    RemoveFromDb,
    /// Protects the node from scale-in.
    ProtectFromScaleIn,
    /// Lifts the node's scale-in protection.
    UnprotectFromScaleIn,
    /// Applies the DNS changes deferred so far, one batch per zone.
    ApplyDnsChanges,
}

impl BuiltinTask {
    /// Every built-in task.
    pub const ALL: [BuiltinTask; 6] = [
        BuiltinTask::CompleteLifecycleAction,
        BuiltinTask::RecordLifecycleActionHeartbeat,
        BuiltinTask::RemoveFromDb,
        BuiltinTask::ProtectFromScaleIn,
        BuiltinTask::UnprotectFromScaleIn,
        BuiltinTask::ApplyDnsChanges,
    ];

    /// The name a configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            BuiltinTask::CompleteLifecycleAction => "complete_lifecycle_action",
            BuiltinTask::RecordLifecycleActionHeartbeat => "record_lifecycle_action_heartbeat",
            BuiltinTask::RemoveFromDb => "remove_from_db",
            BuiltinTask::ProtectFromScaleIn => "protect_from_scale_in",
            BuiltinTask::UnprotectFromScaleIn => "unprotect_from_scale_in",
            BuiltinTask::ApplyDnsChanges => "apply_dns_changes",
        }
    }

    /// The built-in task named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// A built-in condition: a predicate on the event and its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicate {
    /// From Auto Scaling.
    IsAutoscaling,
    /// An SSM command status change.
    IsCommand,
    /// A schedule rule fired.
    IsScheduled,
    /// Carries lifecycle data.
    IsLifecycle,
    /// A launch.
    IsLaunching,
    /// A termination.
    IsTerminating,
    /// Successful (SPEC 2.3).
    IsSuccessful,
    /// An instance entering a warm pool (`Destination: WarmPool`).
    IsWarmPoolEntry,
    /// An instance leaving a warm pool (`Origin: WarmPool`).
    IsFromWarmPool,
    /// The node is new (cloud-init has not finished).
    IsNewNode,
}

impl Predicate {
    /// Every predicate.
    pub const ALL: [Predicate; 10] = [
        Predicate::IsAutoscaling,
        Predicate::IsCommand,
        Predicate::IsScheduled,
        Predicate::IsLifecycle,
        Predicate::IsLaunching,
        Predicate::IsTerminating,
        Predicate::IsSuccessful,
        Predicate::IsWarmPoolEntry,
        Predicate::IsFromWarmPool,
        Predicate::IsNewNode,
    ];

    /// The name a configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Predicate::IsAutoscaling => "is_autoscaling",
            Predicate::IsCommand => "is_command",
            Predicate::IsScheduled => "is_scheduled",
            Predicate::IsLifecycle => "is_lifecycle",
            Predicate::IsLaunching => "is_launching",
            Predicate::IsTerminating => "is_terminating",
            Predicate::IsSuccessful => "is_successful",
            Predicate::IsWarmPoolEntry => "is_warm_pool_entry",
            Predicate::IsFromWarmPool => "is_from_warm_pool",
            Predicate::IsNewNode => "is_new_node",
        }
    }

    /// The predicate named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Evaluates the predicate for `event` (marked `failed` or not) and its node.
    pub fn eval(self, event: &Event, failed: bool, node: Option<&Node>) -> bool {
        let lc = event.lifecycle.as_ref();
        match self {
            Predicate::IsAutoscaling => event.is_autoscaling(),
            Predicate::IsCommand => event.is_command(),
            Predicate::IsScheduled => event.is_scheduled(),
            Predicate::IsLifecycle => event.is_lifecycle(),
            Predicate::IsLaunching => event.is_launching(),
            Predicate::IsTerminating => event.is_terminating(),
            Predicate::IsSuccessful => event.is_successful(failed),
            Predicate::IsWarmPoolEntry => lc.is_some_and(|l| l.is_warm_pool_entry()),
            Predicate::IsFromWarmPool => lc.is_some_and(|l| l.is_from_warm_pool()),
            Predicate::IsNewNode => node.is_some_and(Node::is_new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in BuiltinTask::ALL {
            assert_eq!(BuiltinTask::from_name(t.name()), Some(t));
            assert_eq!(Predicate::from_name(t.name()), None);
        }
        for p in Predicate::ALL {
            assert_eq!(Predicate::from_name(p.name()), Some(p));
        }
        assert_eq!(BuiltinTask::from_name("teleport"), None);
    }
}
