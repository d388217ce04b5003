//! Typed events: what AWS sends, unwrapped from its envelopes and normalized (SPEC 2).
//!
//! [`parse`] takes the raw bytes a Lambda or the CLI receives and returns one result per
//! record: an [`Event`] to process, a [`NotSupported`] outcome (a foreign source, a test
//! notification, a non-terminal SSM status), or an [`EventError`] naming the field that is
//! wrong. Envelopes — EventBridge, SNS, SQS, SNS inside SQS, and the message a lifecycle hook
//! sends to SNS or SQS directly — are unwrapped here and nowhere else.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Which AWS service an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// `aws.autoscaling`, or a lifecycle hook's direct SNS/SQS message.
    #[serde(rename = "aws.autoscaling")]
    AutoScaling,
    /// `aws.ssm`: an SSM command's status changed.
    #[serde(rename = "aws.ssm")]
    Ssm,
    /// `aws.events`: a schedule rule fired.
    #[serde(rename = "aws.events")]
    Schedule,
}

impl Source {
    /// The `source` string AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AutoScaling => "aws.autoscaling",
            Source::Ssm => "aws.ssm",
            Source::Schedule => "aws.events",
        }
    }
}

/// The lifecycle transition a hook is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleTransition {
    /// `autoscaling:EC2_INSTANCE_LAUNCHING`.
    Launching,
    /// `autoscaling:EC2_INSTANCE_TERMINATING`.
    Terminating,
}

impl LifecycleTransition {
    /// The string AWS uses in `LifecycleTransition`.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleTransition::Launching => "autoscaling:EC2_INSTANCE_LAUNCHING",
            LifecycleTransition::Terminating => "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    }

    /// Parses the AWS string; `None` for anything else (including `TEST_NOTIFICATION`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "autoscaling:EC2_INSTANCE_LAUNCHING" => Some(LifecycleTransition::Launching),
            "autoscaling:EC2_INSTANCE_TERMINATING" => Some(LifecycleTransition::Terminating),
            _ => None,
        }
    }
}

impl Serialize for LifecycleTransition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LifecycleTransition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LifecycleTransition::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown LifecycleTransition {s:?}")))
    }
}

/// The lifecycle data of an Auto Scaling lifecycle action (SPEC 2.1, 2.3).
///
/// Serialises with the AWS field names, which is also the shape stored as `LifecycleData` in a
/// command record; `NotificationMetadata` is always written as a JSON object and read either
/// as an object or as a JSON string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleData {
    /// `EC2InstanceId`: the instance the hook is waiting on.
    #[serde(rename = "EC2InstanceId")]
    pub instance_id: String,
    /// `AutoScalingGroupName`.
    #[serde(rename = "AutoScalingGroupName")]
    pub auto_scaling_group: String,
    /// `LifecycleHookName`.
    #[serde(rename = "LifecycleHookName")]
    pub hook_name: String,
    /// `LifecycleActionToken`; a hook can also be completed by instance id.
    #[serde(
        rename = "LifecycleActionToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub token: Option<String>,
    /// `LifecycleTransition`.
    #[serde(rename = "LifecycleTransition")]
    pub transition: LifecycleTransition,
    /// `NotificationMetadata`, decoded; empty when absent or not a JSON object.
    #[serde(
        rename = "NotificationMetadata",
        default,
        deserialize_with = "metadata_tolerant"
    )]
    pub metadata: Map<String, Value>,
    /// `Origin` (warm pools): `EC2` or `WarmPool`.
    #[serde(rename = "Origin", default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `Destination` (warm pools): `AutoScalingGroup` or `WarmPool`.
    #[serde(
        rename = "Destination",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination: Option<String>,
    /// When the action times out unless a heartbeat extends it (epoch seconds): not sent by
    /// AWS; the dispatcher works it out from the event's time and the hook's heartbeat
    /// timeout, and a command record carries it to the command's status event (SPEC 9: a
    /// transient error near the timeout enters failure handling, so the configured result
    /// is sent on purpose).
    #[serde(
        rename = "ActionDueAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub due_at: Option<u64>,
}

impl LifecycleData {
    /// True for an instance leaving a warm pool (`Origin: WarmPool`).
    pub fn is_from_warm_pool(&self) -> bool {
        self.origin.as_deref() == Some("WarmPool")
    }

    /// True for an instance entering a warm pool (`Destination: WarmPool`).
    pub fn is_warm_pool_entry(&self) -> bool {
        self.destination.as_deref() == Some("WarmPool")
    }

    /// The lifecycle state an instance waits in while this action is active, as
    /// `DescribeAutoScalingInstances` reports it: `Pending:Wait`, `Terminating:Wait`, or
    /// their `Warmed:` forms for an instance entering (or terminating in) a warm pool.
    pub fn wait_state(&self) -> &'static str {
        match (
            self.transition,
            self.is_warm_pool_entry(),
            self.is_from_warm_pool(),
        ) {
            (LifecycleTransition::Launching, true, _) => "Warmed:Pending:Wait",
            (LifecycleTransition::Launching, false, _) => "Pending:Wait",
            (LifecycleTransition::Terminating, _, true) => "Warmed:Terminating:Wait",
            (LifecycleTransition::Terminating, _, false) => "Terminating:Wait",
        }
    }
}

/// Decodes `NotificationMetadata` given as an object, a JSON string holding an object, null,
/// or anything else (→ empty). Never fails: bad metadata must not fail a lifecycle action.
fn metadata_tolerant<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(decode_metadata(&v).0)
}

/// Decodes a `NotificationMetadata` value; the second element is a warning when the value was
/// present but not a JSON object (or a string holding one).
pub fn decode_metadata(v: &Value) -> (Map<String, Value>, Option<String>) {
    match v {
        Value::Null => (Map::new(), None),
        Value::Object(m) => (m.clone(), None),
        Value::String(s) if s.trim().is_empty() => (Map::new(), None),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => (m, None),
            _ => (
                Map::new(),
                Some("NotificationMetadata is not a JSON object; using empty metadata".into()),
            ),
        },
        _ => (
            Map::new(),
            Some("NotificationMetadata is not a JSON object; using empty metadata".into()),
        ),
    }
}

/// The SSM part of an `aws.ssm` command status-change event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandStatus {
    /// `detail.command-id`.
    pub command_id: String,
    /// `detail.status`, e.g. `Success`, `Failed`, `TimedOut`, `Cancelled`.
    pub status: String,
    /// `detail.document-name`, when present.
    pub document_name: Option<String>,
    /// `detail.parameters.commands`, when present (the parameters may be a JSON string or an
    /// object).
    pub commands: Vec<String>,
    /// Instance ids taken from the last path segment of each ARN in `resources`.
    pub instance_ids: Vec<String>,
}

/// SSM statuses after which a command will not change again.
pub const TERMINAL_COMMAND_STATUSES: &[&str] = &[
    "Success",
    "Failed",
    "TimedOut",
    "Cancelled",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Undeliverable",
    "Terminated",
    "InvalidPlatform",
    "AccessDenied",
];

impl CommandStatus {
    /// True when the command finished successfully.
    pub fn is_success(&self) -> bool {
        self.status == "Success"
    }
}

/// A normalized event (SPEC 2.3).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// Where it came from.
    pub source: Source,
    /// The event's name: the `detail-type`, or for a scheduled event the rule's name; a command
    /// event is renamed from its command record.
    pub name: String,
    /// The EventBridge event id, when there is one (also the SNS/SQS message id for a direct
    /// lifecycle hook message); used to recognise redelivery.
    pub id: Option<String>,
    /// The event's `time`, as sent.
    pub time: Option<String>,
    /// `region`, when sent.
    pub region: Option<String>,
    /// `account`, when sent.
    pub account: Option<String>,
    /// `resources`, as sent.
    pub resources: Vec<String>,
    /// Lifecycle data: from the lifecycle event itself, or from the command record that a
    /// command event resumes.
    pub lifecycle: Option<LifecycleData>,
    /// SSM command status, for an `aws.ssm` event.
    pub command: Option<CommandStatus>,
    /// For a scheduled event: the rule's name.
    pub rule: Option<String>,
    /// Things that were wrong but tolerated (e.g. metadata that is not JSON).
    pub warnings: Vec<String>,
}

impl Event {
    /// An event from `source` named `name`, with every optional part empty: the start of an
    /// event built by a program rather than parsed (tests, replays).
    pub fn new(source: Source, name: impl Into<String>) -> Self {
        Event {
            source,
            name: name.into(),
            id: None,
            time: None,
            region: None,
            account: None,
            resources: Vec::new(),
            lifecycle: None,
            command: None,
            rule: None,
            warnings: Vec::new(),
        }
    }

    /// `is_autoscaling`: from Auto Scaling.
    pub fn is_autoscaling(&self) -> bool {
        self.source == Source::AutoScaling
    }
    /// `is_command`: an SSM command status change.
    pub fn is_command(&self) -> bool {
        self.source == Source::Ssm
    }
    /// `is_scheduled`: a schedule rule fired.
    pub fn is_scheduled(&self) -> bool {
        self.source == Source::Schedule
    }
    /// `is_lifecycle`: carries lifecycle data (also a command event resuming a lifecycle).
    pub fn is_lifecycle(&self) -> bool {
        self.lifecycle.is_some()
    }
    /// `is_launching`: the lifecycle data is a launch.
    pub fn is_launching(&self) -> bool {
        self.lifecycle
            .as_ref()
            .is_some_and(|l| l.transition == LifecycleTransition::Launching)
    }
    /// `is_terminating`: the lifecycle data is a termination.
    pub fn is_terminating(&self) -> bool {
        self.lifecycle
            .as_ref()
            .is_some_and(|l| l.transition == LifecycleTransition::Terminating)
    }
    /// The event's own success, before any failure marked during processing: a command event
    /// is successful only when its status is `Success`; every other event is.
    pub fn status_successful(&self) -> bool {
        self.command.as_ref().is_none_or(CommandStatus::is_success)
    }
    /// `is_successful` (SPEC 2.3): the event's own success, unless it was marked `failed`
    /// during processing.
    pub fn is_successful(&self, failed: bool) -> bool {
        !failed && self.status_successful()
    }
    /// The lifecycle result (SPEC 2.3): `CONTINUE` when the event has not failed and it is a
    /// termination or successful; otherwise `ABANDON`.
    pub fn lifecycle_result(&self, failed: bool) -> LifecycleResult {
        if !failed && (self.is_terminating() || self.status_successful()) {
            LifecycleResult::Continue
        } else {
            LifecycleResult::Abandon
        }
    }
    /// True when the command of a status event was sent by this library: its first line is
    /// [`COMMAND_MARKER`].
    pub fn is_our_command(&self) -> bool {
        self.command
            .as_ref()
            .is_some_and(|c| c.commands.first().map(String::as_str) == Some(COMMAND_MARKER))
    }
    /// The instance id named by `resources[0]` (last path segment), for a command event without
    /// lifecycle data.
    pub fn resource_instance(&self) -> Option<&str> {
        if let Some(c) = &self.command
            && let Some(first) = c.instance_ids.first()
        {
            return Some(first);
        }
        self.resources
            .first()
            .and_then(|arn| arn.rsplit('/').next())
            .filter(|s| !s.is_empty())
    }
}

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

/// The first line of every shell command the library sends: a shell comment that the
/// command's status event carries back in its `parameters`, so that a status event that
/// arrives before its command record is stored is recognised as ours and waited for.
pub const COMMAND_MARKER: &str = "# sent by autoscaling-lifecycle";

/// Why an event is acknowledged but not processed (SPEC 2.1). Retrying would not help.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotSupported {
    /// What was seen, e.g. `source aws.ec2`, `autoscaling:TEST_NOTIFICATION`,
    /// `SSM status InProgress`, `command 1234 is not ours`.
    pub reason: String,
}

/// One record of an envelope after parsing.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// An event to process.
    Event(Box<Event>),
    /// Acknowledged, nothing to do.
    NotSupported(NotSupported),
}

/// Invalid input: the bytes are not an event we understand, and processing them cannot succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON at all (or truncated).
    #[error("event is not valid JSON: {0}")]
    NotJson(String),
    /// A required field is missing.
    #[error("event field `{field}` is missing")]
    MissingField {
        /// Dotted path of the field, e.g. `detail.EC2InstanceId`.
        field: String,
    },
    /// A field has the wrong type or an impossible value.
    #[error("event field `{field}` is invalid: expected {expected}")]
    InvalidField {
        /// Dotted path of the field.
        field: String,
        /// What it should have been.
        expected: String,
    },
    /// The JSON is neither an event nor an envelope we know.
    #[error("input is not an EventBridge event, an SNS/SQS envelope or a lifecycle hook message")]
    UnknownShape,
}

/// Parses raw input into one result per record, in order.
///
/// A direct EventBridge event is one record; an SNS or SQS envelope with several `Records` is
/// several. Each record is unwrapped (SNS inside SQS too) and classified.
///
/// A lifecycle hook's direct SNS/SQS message (top-level `Service: "AWS Auto Scaling"`) is an
/// [`Source::AutoScaling`] event named `EC2 Instance-launch Lifecycle Action` or
/// `EC2 Instance-terminate Lifecycle Action` after its transition; its id is the innermost
/// SNS/SQS message id (its `RequestId` when given without an envelope), its time `Time`, its
/// account `AccountId`, its region that of the envelope. Its `Event:
/// "autoscaling:TEST_NOTIFICATION"` form is [`Parsed::NotSupported`].
///
/// Field paths in errors are dotted (`detail.EC2InstanceId`, `detail.command-id`,
/// `resources[0]`). Inside a `Records` envelope every path starts with `Records[N].`, even for a
/// single record: envelope fields are named by their place in the record
/// (`Records[0].Sns.Message`, `Records[1].body`, `Records[1].body.Message` for SNS inside SQS),
/// the event's fields by their path inside the event (`Records[0].detail.EC2InstanceId`). A
/// direct hook message names its top-level fields (`EC2InstanceId`). JSON `null` counts as
/// missing; an empty required string is invalid.
///
/// # Errors
/// [`EventError::NotJson`] when the input as a whole is not JSON; per-record errors are returned
/// inside the vector, so one bad record does not hide the others. The vector is never empty: an
/// empty `Records` array gives one [`EventError::MissingField`] `Records[0]`, and JSON that is
/// neither an event, an envelope nor a hook message one [`EventError::UnknownShape`].
pub fn parse(input: &[u8]) -> Result<Vec<Result<Parsed, EventError>>, EventError> {
    let value: Value =
        serde_json::from_slice(input).map_err(|e| EventError::NotJson(e.to_string()))?;
    Ok(parse_value(&value))
}

/// Like [`parse`], for an already decoded JSON value.
pub fn parse_value(value: &Value) -> Vec<Result<Parsed, EventError>> {
    envelope::unwrap(value)
}

mod envelope;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_decoding() {
        let (m, w) = decode_metadata(&json!("{\"type\":\"worker\"}"));
        assert_eq!(m.get("type"), Some(&json!("worker")));
        assert!(w.is_none());
        let (m, w) = decode_metadata(&json!({"type": "manager"}));
        assert_eq!(m.get("type"), Some(&json!("manager")));
        assert!(w.is_none());
        for empty in [Value::Null, json!(""), json!("   ")] {
            let (m, w) = decode_metadata(&empty);
            assert!(m.is_empty() && w.is_none(), "{empty}");
        }
        for bad in [json!("additional-info"), json!("[1]"), json!(3), json!([])] {
            let (m, w) = decode_metadata(&bad);
            assert!(m.is_empty() && w.is_some(), "{bad}");
        }
    }

    #[test]
    fn transition_strings_round_trip() {
        for t in [
            LifecycleTransition::Launching,
            LifecycleTransition::Terminating,
        ] {
            assert_eq!(LifecycleTransition::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            LifecycleTransition::parse("autoscaling:TEST_NOTIFICATION"),
            None
        );
    }
}
