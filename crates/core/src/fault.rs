//! One error type for everything a capability can report — a store, an AWS call, a task — and
//! one classification of it: the project's single retry policy (SPEC 9).
//!
//! A [`Fault`] keeps what the backend said as data (the operation, the AWS error code, the
//! HTTP status); [`Fault::kind`] says what a retry can do about it. Backends decide the kind
//! once, where the error arises (the AWS crate in one `classify` function); everything
//! downstream — the engine, the dispatcher, the CLI's exit code, the Lambda's batch response —
//! asks [`Fault::kind`] and never looks at the message.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a retry can do about a [`Fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultKind {
    /// A retry can mend it: throttling, 5xx, timeouts, a refused connection, a wait that ran
    /// out, an SSM agent not yet registered.
    Transient,
    /// A retry cannot mend it: access denied, a failed command, a task that refused.
    Permanent,
    /// A compare-and-set lost: someone else changed the item first. Not retried: the winner
    /// owns what happens next (SPEC 4.3).
    Conflict,
    /// What was asked for does not exist (a node not in the table, no active lifecycle action).
    NotFound,
    /// Malformed data: a table item, a parameter AWS refused as invalid.
    Invalid,
}

impl FaultKind {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Transient => "transient",
            FaultKind::Permanent => "permanent",
            FaultKind::Conflict => "conflict",
            FaultKind::NotFound => "not_found",
            FaultKind::Invalid => "invalid",
        }
    }

    /// True when retrying may succeed: the retry policy in one place.
    pub fn is_transient(self) -> bool {
        self == FaultKind::Transient
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// A call to a service (AWS, or the local store's file) failed.
    #[error("{operation}: {}{message}", code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Service {
        /// The operation, e.g. `CompleteLifecycleAction`.
        operation: String,
        /// The service's error code, when it answered with one (e.g. `ThrottlingException`).
        code: Option<String>,
        /// The HTTP status, when there was a response.
        status: Option<u16>,
        /// What the service (or the transport) said.
        message: String,
        /// What a retry can do, decided by the backend that made the call.
        kind: FaultKind,
    },
    /// A compare-and-set lost: the node's status is no longer the one read.
    #[error("node {id}: expected status {expected:?} but found {found:?}")]
    Conflict {
        /// The node.
        id: String,
        /// The status this invocation read.
        expected: String,
        /// The status in the table now (`new` when the item is gone).
        found: String,
    },
    /// An item in the state table cannot be read as a node or a command record.
    #[error("item {id} in the state table is malformed: {reason}")]
    Corrupt {
        /// The item's key (`?` when the key itself is bad).
        id: String,
        /// What is wrong, naming the attribute.
        reason: String,
    },
    /// A node that must exist is not in the table.
    #[error("node {id} is not in the state table")]
    MissingNode {
        /// The node.
        id: String,
    },
    /// A task or condition failed on its own terms (no lifecycle data, a placeholder without
    /// a value, a wait that ran out).
    #[error("{message}")]
    Task {
        /// What went wrong, for the operator.
        message: String,
        /// What a retry can do.
        kind: FaultKind,
    },
}

impl Fault {
    /// A task's failure that a retry cannot mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        Fault::Task {
            message: message.into(),
            kind: FaultKind::Permanent,
        }
    }

    /// A task's failure that a retry may mend (a wait that ran out, say).
    pub fn transient(message: impl Into<String>) -> Self {
        Fault::Task {
            message: message.into(),
            kind: FaultKind::Transient,
        }
    }

    /// What a retry can do about this fault: the one classification.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Service { kind, .. } | Fault::Task { kind, .. } => *kind,
            Fault::Conflict { .. } => FaultKind::Conflict,
            Fault::Corrupt { .. } => FaultKind::Invalid,
            Fault::MissingNode { .. } => FaultKind::NotFound,
        }
    }

    /// True when retrying may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// The service's error code, when there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Fault::Service { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status, when there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Fault::Service { status, .. } => *status,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_follows_the_variant_and_only_transient_is_retried() {
        let throttled = Fault::Service {
            operation: "PutItem".into(),
            code: Some("ThrottlingException".into()),
            status: Some(400),
            message: "slow down".into(),
            kind: FaultKind::Transient,
        };
        assert!(throttled.is_transient());
        assert_eq!(throttled.code(), Some("ThrottlingException"));
        assert_eq!(throttled.status(), Some(400));
        assert_eq!(
            throttled.to_string(),
            "PutItem: ThrottlingException: slow down"
        );
        let conflict = Fault::Conflict {
            id: "i-1".into(),
            expected: "a".into(),
            found: "b".into(),
        };
        assert_eq!(conflict.kind(), FaultKind::Conflict);
        assert!(!conflict.is_transient());
        let corrupt = Fault::Corrupt {
            id: "i-1".into(),
            reason: "x".into(),
        };
        assert_eq!(corrupt.kind(), FaultKind::Invalid);
        assert_eq!(
            Fault::MissingNode { id: "i-1".into() }.kind(),
            FaultKind::NotFound
        );
        assert!(Fault::transient("wait ran out").is_transient());
        assert!(!Fault::permanent("refused").is_transient());
    }
}
