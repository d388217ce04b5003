//! Envelope unwrapping and per-source classification.
//!
//! The layers, outermost first:
//!
//! 1. `{"Records": [...]}`: an SNS record (`EventSource: "aws:sns"`, `Sns.Message`) or an
//!    SQS record (`eventSource: "aws:sqs"`, `body`), one result per record, in order;
//! 2. inside an SQS `body` (or at the top level): an SNS notification
//!    (`{"Type": "Notification", "Message": ...}`);
//! 3. the message itself: an EventBridge event (`source`/`detail-type`) or a lifecycle hook's
//!    direct message (`Service: "AWS Auto Scaling"`).
//!
//! `Sns.Message`, `body` and `Message` are JSON strings; an object there is accepted as is.
//!
//! Field paths in errors are dotted. Inside a `Records` envelope they start with
//! `Records[N].` (also for a single record): envelope fields by their place in the record
//! (`Records[0].Sns.Message`, `Records[1].body`, `Records[1].body.Message`), the event's
//! own fields by their path inside the event (`Records[0].detail.EC2InstanceId`). A direct
//! event has no prefix (`detail.EC2InstanceId`); a direct hook message names its top-level
//! fields (`EC2InstanceId`). JSON `null` counts as missing.

use super::*;

type Outcome = Result<Parsed, EventError>;
type Object = Map<String, Value>;

/// `detail-type` of an SSM command status change.
const SSM_COMMAND: &str = "EC2 Command Status-change Notification";
/// `detail-type` of an SSM command invocation (one instance) status change.
const SSM_INVOCATION: &str = "EC2 Command Invocation Status-change Notification";
/// `detail-type` of a schedule rule.
const SCHEDULED: &str = "Scheduled Event";
/// The `Service` of a lifecycle hook's direct SNS/SQS message.
const HOOK_SERVICE: &str = "AWS Auto Scaling";
/// The transition (or `Event`) of Auto Scaling's test message.
const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";

/// The event name given to a direct hook message, which has no `detail-type`.
fn hook_event_name(transition: LifecycleTransition) -> &'static str {
    match transition {
        LifecycleTransition::Launching => "EC2 Instance-launch Lifecycle Action",
        LifecycleTransition::Terminating => "EC2 Instance-terminate Lifecycle Action",
    }
}

/// Why classification stopped before producing an event.
enum Halt {
    /// Acknowledged, nothing to do; the reason names what was seen.
    NotSupported(String),
    /// Invalid input.
    Invalid(EventError),
}

impl From<EventError> for Halt {
    fn from(e: EventError) -> Self {
        Halt::Invalid(e)
    }
}

fn finish(r: Result<Event, Halt>) -> Outcome {
    match r {
        Ok(event) => Ok(Parsed::Event(Box::new(event))),
        Err(Halt::NotSupported(reason)) => Ok(Parsed::NotSupported(NotSupported { reason })),
        Err(Halt::Invalid(e)) => Err(e),
    }
}

/// What the envelopes around a message tell about it, and how to name its fields.
#[derive(Debug, Clone, Default)]
struct Ctx {
    /// Prefix of every field path: empty, or `Records[N].`.
    prefix: String,
    /// Where an SNS notification's `Message` sits relative to `prefix` (`body.` in SQS).
    within: &'static str,
    /// The innermost SNS/SQS message id.
    message_id: Option<String>,
    /// The region of the envelope (SQS `awsRegion`, or taken from an ARN).
    region: Option<String>,
    /// Already inside an SNS layer: no further SNS notification is unwrapped.
    in_sns: bool,
}

impl Ctx {
    fn path(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }
    fn missing(&self, field: &str) -> EventError {
        EventError::MissingField {
            field: self.path(field),
        }
    }
    fn invalid(&self, field: &str, expected: &str) -> EventError {
        EventError::InvalidField {
            field: self.path(field),
            expected: expected.to_owned(),
        }
    }
    /// True once inside an SNS or SQS envelope.
    fn in_envelope(&self) -> bool {
        !self.prefix.is_empty() || self.in_sns
    }
    /// JSON that is no event we know: inside an envelope it is "not supported" for that
    /// record (an S3 notification, a stray message on the queue: retrying cannot help, and it
    /// must not fail the batch, SPEC 8); at the top level it is not an event at all.
    fn foreign(&self, what: &str) -> Outcome {
        if self.in_envelope() {
            let at = self.prefix.trim_end_matches('.');
            let at = if at.is_empty() { "the message" } else { at };
            Ok(Parsed::NotSupported(NotSupported {
                reason: format!("{at}: {what}"),
            }))
        } else {
            Err(EventError::UnknownShape)
        }
    }
    fn not_json(&self, field: &str, err: &serde_json::Error) -> EventError {
        EventError::NotJson(format!("{}: {err}", self.path(field)))
    }
}

pub(super) fn unwrap(value: &Value) -> Vec<Outcome> {
    let Some(obj) = value.as_object() else {
        return vec![Err(EventError::UnknownShape)];
    };
    match obj.get("Records") {
        Some(records) => unwrap_records(records),
        None => vec![message(obj, Ctx::default())],
    }
}

fn unwrap_records(records: &Value) -> Vec<Outcome> {
    let Some(list) = records.as_array() else {
        return vec![Err(Ctx::default().invalid("Records", "an array of records"))];
    };
    if list.is_empty() {
        return vec![Err(Ctx::default().missing("Records[0]"))];
    }
    list.iter()
        .enumerate()
        .map(|(index, r)| record(index, r))
        .collect()
}

fn record(index: usize, record: &Value) -> Outcome {
    let ctx = Ctx {
        prefix: format!("Records[{index}]."),
        ..Ctx::default()
    };
    let Some(rec) = record.as_object() else {
        return ctx.foreign("a record that is not an object");
    };
    let sns = rec.get("EventSource").and_then(Value::as_str) == Some("aws:sns");
    let sqs = rec.get("eventSource").and_then(Value::as_str) == Some("aws:sqs");
    let declared = rec.contains_key("EventSource") || rec.contains_key("eventSource");
    if sns || (!declared && rec.contains_key("Sns")) {
        sns_record(rec, ctx)
    } else if sqs || (!declared && rec.contains_key("body")) {
        sqs_record(rec, ctx)
    } else {
        let source = loose_str(rec, "eventSource")
            .or_else(|| loose_str(rec, "EventSource"))
            .unwrap_or_else(|| "an unknown source".to_owned());
        ctx.foreign(&format!("a record of {source}, not SNS or SQS"))
    }
}

fn sns_record(rec: &Object, mut ctx: Ctx) -> Outcome {
    let sns = match rec.get("Sns") {
        None | Some(Value::Null) => return Err(ctx.missing("Sns")),
        Some(Value::Object(sns)) => sns,
        Some(_) => return Err(ctx.invalid("Sns", "an object")),
    };
    ctx.message_id = loose_str(sns, "MessageId");
    ctx.region = loose_str(sns, "TopicArn")
        .or_else(|| loose_str(rec, "EventSubscriptionArn"))
        .and_then(|arn| arn_region(&arn));
    ctx.in_sns = true;
    let inner = json_string(sns.get("Message"), &ctx, "Sns.Message")?;
    message_value(&inner, ctx)
}

fn sqs_record(rec: &Object, mut ctx: Ctx) -> Outcome {
    ctx.message_id = loose_str(rec, "messageId");
    ctx.region = loose_str(rec, "awsRegion")
        .or_else(|| loose_str(rec, "eventSourceARN").and_then(|arn| arn_region(&arn)));
    ctx.within = "body.";
    let inner = json_string(rec.get("body"), &ctx, "body")?;
    message_value(&inner, ctx)
}

/// Decodes an envelope field holding a JSON string (an object is taken as is).
fn json_string(v: Option<&Value>, ctx: &Ctx, field: &str) -> Result<Value, EventError> {
    match v {
        None | Some(Value::Null) => Err(ctx.missing(field)),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|e| ctx.not_json(field, &e)),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(_) => Err(ctx.invalid(field, "a JSON string")),
    }
}

fn message_value(v: &Value, ctx: Ctx) -> Outcome {
    match v.as_object() {
        Some(obj) => message(obj, ctx),
        None => ctx.foreign("JSON that is not an object"),
    }
}

/// Classifies one unwrapped message.
fn message(obj: &Object, ctx: Ctx) -> Outcome {
    if obj.contains_key("source") || obj.contains_key("detail-type") {
        finish(event_bridge(obj, &ctx))
    } else if obj.get("Service").and_then(Value::as_str) == Some(HOOK_SERVICE) {
        finish(hook_message(obj, &ctx))
    } else if !ctx.in_sns && is_sns_message(obj) {
        sns_message(obj, ctx)
    } else {
        ctx.foreign("JSON that is no event of ours (no `source`, no lifecycle hook message)")
    }
}

fn is_sns_message(obj: &Object) -> bool {
    obj.get("Type").is_some_and(Value::is_string)
        && (obj.contains_key("Message") || obj.contains_key("TopicArn"))
}

/// An SNS notification (inside SQS, or given directly): unwraps its `Message`.
fn sns_message(obj: &Object, mut ctx: Ctx) -> Outcome {
    match obj.get("Type").and_then(Value::as_str) {
        Some("Notification") => {}
        Some(kind @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) => {
            return Ok(Parsed::NotSupported(NotSupported {
                reason: format!("SNS {kind} message"),
            }));
        }
        _ => return ctx.foreign("an SNS message of another type"),
    }
    if let Some(id) = loose_str(obj, "MessageId") {
        ctx.message_id = Some(id);
    }
    if ctx.region.is_none() {
        ctx.region = loose_str(obj, "TopicArn").and_then(|arn| arn_region(&arn));
    }
    ctx.in_sns = true;
    let field = format!("{}Message", ctx.within);
    let inner = json_string(obj.get("Message"), &ctx, &field)?;
    message_value(&inner, ctx)
}

/// An EventBridge event: `source` picks the classifier.
fn event_bridge(obj: &Object, ctx: &Ctx) -> Result<Event, Halt> {
    let source = match obj.get("source") {
        None | Some(Value::Null) => return Err(ctx.missing("source").into()),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ctx.invalid("source", "a string").into()),
    };
    let supported = matches!(source, "aws.autoscaling" | "aws.ssm" | "aws.events");
    if !supported {
        let detail_type = obj
            .get("detail-type")
            .and_then(Value::as_str)
            .unwrap_or("(none)");
        return Err(Halt::NotSupported(format!(
            "source {source}, detail-type {detail_type}"
        )));
    }
    // An empty detail-type says nothing: the event is named as if it had none (found by
    // fuzzing: it gave an event with an empty name).
    let detail_type = optional_str(obj, ctx, "detail-type")?.filter(|d| !d.trim().is_empty());
    match source {
        "aws.autoscaling" => autoscaling(obj, detail_type, ctx),
        "aws.ssm" => ssm(obj, detail_type, ctx),
        _ => schedule(obj, detail_type, ctx),
    }
}

/// `aws.autoscaling`: a lifecycle action when `detail` has a `LifecycleTransition` (or the
/// detail-type says it is one and it lacks it: invalid); anything else is not supported.
fn autoscaling(obj: &Object, detail_type: Option<&str>, ctx: &Ctx) -> Result<Event, Halt> {
    let has_transition = obj
        .get("detail")
        .and_then(Value::as_object)
        .is_some_and(|d| d.contains_key("LifecycleTransition"));
    let says_lifecycle = detail_type.is_some_and(|d| d.ends_with("Lifecycle Action"));
    if !has_transition && !says_lifecycle {
        return Err(Halt::NotSupported(format!(
            "aws.autoscaling event {}",
            detail_type.unwrap_or("(no detail-type)")
        )));
    }
    let detail = detail(obj, ctx)?;
    let (lifecycle, warnings) = lifecycle_data(detail, ctx, "detail.")?;
    let common = common(obj, ctx)?;
    let name = detail_type.map_or_else(
        || hook_event_name(lifecycle.transition).to_owned(),
        str::to_owned,
    );
    Ok(Event {
        source: Source::AutoScaling,
        name,
        id: common.id,
        time: common.time,
        region: common.region,
        account: common.account,
        resources: common.resources,
        lifecycle: Some(lifecycle),
        command: None,
        rule: None,
        warnings,
    })
}

/// A lifecycle hook's direct SNS/SQS message (no EventBridge).
fn hook_message(obj: &Object, ctx: &Ctx) -> Result<Event, Halt> {
    let event = obj.get("Event").and_then(Value::as_str);
    if event == Some(TEST_NOTIFICATION) {
        return Err(Halt::NotSupported(TEST_NOTIFICATION.to_owned()));
    }
    if !obj.contains_key("LifecycleTransition")
        && let Some(event) = event
    {
        return Err(Halt::NotSupported(format!(
            "Auto Scaling notification {event}"
        )));
    }
    let (lifecycle, warnings) = lifecycle_data(obj, ctx, "")?;
    let request_id = optional_str(obj, ctx, "RequestId")?;
    let time = optional_str(obj, ctx, "Time")?;
    let account = optional_str(obj, ctx, "AccountId")?;
    let group_arn = optional_str(obj, ctx, "AutoScalingGroupARN")?;
    let region = ctx
        .region
        .clone()
        .or_else(|| group_arn.and_then(arn_region));
    Ok(Event {
        source: Source::AutoScaling,
        name: hook_event_name(lifecycle.transition).to_owned(),
        id: ctx
            .message_id
            .clone()
            .or_else(|| request_id.map(str::to_owned)),
        time: time.map(str::to_owned),
        region,
        account: account.map(str::to_owned),
        resources: group_arn.map(str::to_owned).into_iter().collect(),
        lifecycle: Some(lifecycle),
        command: None,
        rule: None,
        warnings,
    })
}

/// The lifecycle fields of `map`, named `base` + key in errors.
fn lifecycle_data(
    map: &Object,
    ctx: &Ctx,
    base: &str,
) -> Result<(LifecycleData, Vec<String>), Halt> {
    let field = |key: &str| format!("{base}{key}");
    let transition_field = field("LifecycleTransition");
    let raw = required_str(map, ctx, &transition_field)?;
    if raw == TEST_NOTIFICATION {
        return Err(Halt::NotSupported(TEST_NOTIFICATION.to_owned()));
    }
    let transition = LifecycleTransition::parse(raw).ok_or_else(|| {
        ctx.invalid(
            &transition_field,
            "autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING",
        )
    })?;
    let instance_id = required_str(map, ctx, &field("EC2InstanceId"))?;
    let group = required_str(map, ctx, &field("AutoScalingGroupName"))?;
    let hook = required_str(map, ctx, &field("LifecycleHookName"))?;
    let token = optional_str(map, ctx, &field("LifecycleActionToken"))?;
    let origin = optional_str(map, ctx, &field("Origin"))?;
    let destination = optional_str(map, ctx, &field("Destination"))?;
    let (metadata, warning) =
        decode_metadata(map.get("NotificationMetadata").unwrap_or(&Value::Null));
    let data = LifecycleData {
        instance_id: instance_id.to_owned(),
        auto_scaling_group: group.to_owned(),
        hook_name: hook.to_owned(),
        token: token.map(str::to_owned),
        transition,
        metadata,
        origin: origin.map(str::to_owned),
        destination: destination.map(str::to_owned),
        due_at: None,
    };
    Ok((data, warning.into_iter().collect()))
}

/// `aws.ssm` command (or command invocation) status change.
fn ssm(obj: &Object, detail_type: Option<&str>, ctx: &Ctx) -> Result<Event, Halt> {
    let detail_type = detail_type.ok_or_else(|| ctx.missing("detail-type"))?;
    if detail_type != SSM_COMMAND && detail_type != SSM_INVOCATION {
        return Err(Halt::NotSupported(format!("aws.ssm event {detail_type}")));
    }
    let detail = detail(obj, ctx)?;
    let command_id = required_str(detail, ctx, "detail.command-id")?;
    let status = required_str(detail, ctx, "detail.status")?;
    if !TERMINAL_COMMAND_STATUSES.contains(&status) {
        return Err(Halt::NotSupported(format!(
            "SSM status {status} (command {command_id})"
        )));
    }
    let document_name = optional_str(detail, ctx, "detail.document-name")?;
    let invocation_instance = optional_str(detail, ctx, "detail.instance-id")?;
    let common = common(obj, ctx)?;
    let mut warnings = Vec::new();
    let commands = commands(detail.get("parameters"), ctx, &mut warnings);
    let mut instance_ids: Vec<String> = Vec::new();
    let from_resources = common.resources.iter().filter_map(|r| last_segment(r));
    for id in invocation_instance.into_iter().chain(from_resources) {
        if !instance_ids.iter().any(|known| known == id) {
            instance_ids.push(id.to_owned());
        }
    }
    Ok(Event {
        source: Source::Ssm,
        name: detail_type.to_owned(),
        id: common.id,
        time: common.time,
        region: common.region,
        account: common.account,
        resources: common.resources,
        lifecycle: None,
        command: Some(CommandStatus {
            command_id: command_id.to_owned(),
            status: status.to_owned(),
            document_name: document_name.map(str::to_owned),
            commands,
            instance_ids,
        }),
        rule: None,
        warnings,
    })
}

/// `detail.parameters.commands`, tolerantly: the parameters may be a JSON string or an
/// object, `commands` a list or a single string. Anything unusable gives no commands and a
/// warning, never an error.
fn commands(parameters: Option<&Value>, ctx: &Ctx, warnings: &mut Vec<String>) -> Vec<String> {
    let field = ctx.path("detail.parameters");
    let decoded;
    let params = match parameters {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) if s.trim().is_empty() => return Vec::new(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                decoded = m;
                &decoded
            }
            _ => {
                warnings.push(format!("{field} is not a JSON object; no commands taken"));
                return Vec::new();
            }
        },
        Some(_) => {
            warnings.push(format!("{field} is not a JSON object; no commands taken"));
            return Vec::new();
        }
    };
    match params.get("commands") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => {
            let commands: Vec<String> = items
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            if commands.len() != items.len() {
                warnings.push(format!(
                    "{field}.commands has entries that are not strings; they were skipped"
                ));
            }
            commands
        }
        Some(_) => {
            warnings.push(format!(
                "{field}.commands is neither a list nor a string; no commands taken"
            ));
            Vec::new()
        }
    }
}

/// `aws.events` schedule rule: named after the rule.
fn schedule(obj: &Object, detail_type: Option<&str>, ctx: &Ctx) -> Result<Event, Halt> {
    let detail_type = detail_type.ok_or_else(|| ctx.missing("detail-type"))?;
    if detail_type != SCHEDULED {
        return Err(Halt::NotSupported(format!(
            "aws.events event {detail_type}"
        )));
    }
    detail(obj, ctx)?;
    let common = common(obj, ctx)?;
    let arn = common
        .resources
        .first()
        .ok_or_else(|| ctx.missing("resources[0]"))?;
    let rule = last_segment(arn)
        .filter(|_| arn.contains('/'))
        .ok_or_else(|| ctx.invalid("resources[0]", "a rule ARN ending in rule/NAME"))?
        .to_owned();
    Ok(Event {
        source: Source::Schedule,
        name: rule.clone(),
        id: common.id,
        time: common.time,
        region: common.region,
        account: common.account,
        resources: common.resources,
        lifecycle: None,
        command: None,
        rule: Some(rule),
        warnings: Vec::new(),
    })
}

/// The EventBridge fields every event has.
struct Common {
    id: Option<String>,
    time: Option<String>,
    region: Option<String>,
    account: Option<String>,
    resources: Vec<String>,
}

fn common(obj: &Object, ctx: &Ctx) -> Result<Common, EventError> {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    Ok(Common {
        id: owned(optional_str(obj, ctx, "id")?),
        time: owned(optional_str(obj, ctx, "time")?),
        region: owned(optional_str(obj, ctx, "region")?),
        account: owned(optional_str(obj, ctx, "account")?),
        resources: resources(obj, ctx)?,
    })
}

fn resources(obj: &Object, ctx: &Ctx) -> Result<Vec<String>, EventError> {
    match obj.get("resources") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ctx.invalid(&format!("resources[{i}]"), "a string"))
            })
            .collect(),
        Some(_) => Err(ctx.invalid("resources", "an array of strings")),
    }
}

/// `detail`, required as an object.
fn detail<'a>(obj: &'a Object, ctx: &Ctx) -> Result<&'a Object, EventError> {
    match obj.get("detail") {
        None | Some(Value::Null) => Err(ctx.missing("detail")),
        Some(Value::Object(d)) => Ok(d),
        Some(_) => Err(ctx.invalid("detail", "an object")),
    }
}

/// The last segment of a dotted path: the key inside its object.
fn key_of(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// A required, non-empty string; `path` is the field's dotted path below the prefix, its
/// last segment the key in `map`.
fn required_str<'a>(map: &'a Object, ctx: &Ctx, path: &str) -> Result<&'a str, EventError> {
    match map.get(key_of(path)) {
        None | Some(Value::Null) => Err(ctx.missing(path)),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(ctx.invalid(path, "a non-empty string"))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ctx.invalid(path, "a string")),
    }
}

/// An optional string: absent or `null` is `None`, another type is invalid.
fn optional_str<'a>(map: &'a Object, ctx: &Ctx, path: &str) -> Result<Option<&'a str>, EventError> {
    match map.get(key_of(path)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ctx.invalid(path, "a string")),
    }
}

/// An envelope string used only as context: anything but a string is ignored.
fn loose_str(map: &Object, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The last `/` segment of an ARN (the whole string when it has none); `None` when empty.
fn last_segment(arn: &str) -> Option<&str> {
    arn.rsplit('/').next().filter(|s| !s.is_empty())
}

/// The region of an ARN (`arn:PARTITION:SERVICE:REGION:...`), when it names one.
fn arn_region(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") {
        return None;
    }
    parts.nth(2).filter(|r| !r.is_empty()).map(str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch_ctx() -> Ctx {
        Ctx {
            prefix: "Records[2].".into(),
            ..Ctx::default()
        }
    }

    fn obj(v: Value) -> Object {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn last_segment_of_arns() {
        assert_eq!(
            last_segment("arn:aws:ec2:eu-central-1:123456789012:instance/i-0abc"),
            Some("i-0abc")
        );
        assert_eq!(
            last_segment("arn:aws:events:us-east-1:123456789012:rule/bus/nightly"),
            Some("nightly")
        );
        assert_eq!(last_segment("i-0abc"), Some("i-0abc"));
        assert_eq!(last_segment("arn:aws:ec2:r:a:instance/"), None);
        assert_eq!(last_segment(""), None);
    }

    #[test]
    fn region_of_arns() {
        assert_eq!(
            arn_region("arn:aws:sns:eu-west-1:123456789012:topic").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("cn-north-1")
        );
        assert_eq!(arn_region("arn:aws:iam::123456789012:role/x"), None);
        assert_eq!(arn_region("not-an-arn:a:b:c"), None);
        assert_eq!(arn_region("arn"), None);
        assert_eq!(arn_region(""), None);
    }

    #[test]
    fn field_paths_carry_the_record_prefix() {
        let ctx = batch_ctx();
        assert_eq!(
            ctx.missing("detail.EC2InstanceId"),
            EventError::MissingField {
                field: "Records[2].detail.EC2InstanceId".into()
            }
        );
        assert_eq!(
            Ctx::default().invalid("detail", "an object"),
            EventError::InvalidField {
                field: "detail".into(),
                expected: "an object".into()
            }
        );
        assert_eq!(key_of("detail.command-id"), "command-id");
        assert_eq!(key_of("EC2InstanceId"), "EC2InstanceId");
    }

    #[test]
    fn required_and_optional_strings() {
        let ctx = Ctx::default();
        let m = obj(json!({"a": "x", "b": "  ", "c": 5, "d": null}));
        assert_eq!(required_str(&m, &ctx, "detail.a").unwrap(), "x");
        assert!(matches!(
            required_str(&m, &ctx, "detail.b"),
            Err(EventError::InvalidField { ref field, ref expected })
                if field == "detail.b" && expected == "a non-empty string"
        ));
        assert!(matches!(
            required_str(&m, &ctx, "detail.c"),
            Err(EventError::InvalidField { ref field, .. }) if field == "detail.c"
        ));
        assert!(matches!(
            required_str(&m, &ctx, "detail.d"),
            Err(EventError::MissingField { ref field }) if field == "detail.d"
        ));
        assert!(matches!(
            required_str(&m, &ctx, "detail.e"),
            Err(EventError::MissingField { ref field }) if field == "detail.e"
        ));
        assert_eq!(optional_str(&m, &ctx, "a").unwrap(), Some("x"));
        assert_eq!(optional_str(&m, &ctx, "d").unwrap(), None);
        assert_eq!(optional_str(&m, &ctx, "e").unwrap(), None);
        assert!(optional_str(&m, &ctx, "c").is_err());
    }

    #[test]
    fn json_string_fields() {
        let ctx = batch_ctx();
        let ok = json_string(Some(&json!("{\"a\":1}")), &ctx, "body").unwrap();
        assert_eq!(ok, json!({"a": 1}));
        let obj = json_string(Some(&json!({"a": 1})), &ctx, "body").unwrap();
        assert_eq!(obj, json!({"a": 1}));
        match json_string(Some(&json!("{\"a\":")), &ctx, "body") {
            Err(EventError::NotJson(msg)) => assert!(msg.starts_with("Records[2].body: ")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            json_string(None, &ctx, "Sns.Message"),
            Err(EventError::MissingField {
                field: "Records[2].Sns.Message".into()
            })
        );
        assert_eq!(
            json_string(Some(&json!(3)), &ctx, "body"),
            Err(EventError::InvalidField {
                field: "Records[2].body".into(),
                expected: "a JSON string".into()
            })
        );
    }

    #[test]
    fn commands_from_parameters() {
        let ctx = Ctx::default();
        let mut w = Vec::new();
        let as_string = json!("{\"commands\":[\"/bin/a.sh\",\"/bin/b.sh\"]}");
        assert_eq!(
            commands(Some(&as_string), &ctx, &mut w),
            vec!["/bin/a.sh", "/bin/b.sh"]
        );
        let as_object = json!({"commands": ["/bin/a.sh"], "workingDirectory": [""]});
        assert_eq!(commands(Some(&as_object), &ctx, &mut w), vec!["/bin/a.sh"]);
        let single = json!({"commands": "/bin/one.sh"});
        assert_eq!(commands(Some(&single), &ctx, &mut w), vec!["/bin/one.sh"]);
        let single_in_string = json!("{\"commands\":\"/bin/one.sh\"}");
        assert_eq!(
            commands(Some(&single_in_string), &ctx, &mut w),
            vec!["/bin/one.sh"]
        );
        assert!(commands(None, &ctx, &mut w).is_empty());
        assert!(commands(Some(&Value::Null), &ctx, &mut w).is_empty());
        assert!(commands(Some(&json!("")), &ctx, &mut w).is_empty());
        assert!(commands(Some(&json!({"other": 1})), &ctx, &mut w).is_empty());
        assert!(
            w.is_empty(),
            "no warnings for well-formed parameters: {w:?}"
        );
    }

    #[test]
    fn garbage_parameters_give_warnings_not_errors() {
        let ctx = batch_ctx();
        for garbage in [
            json!("not json"),
            json!("[1,2]"),
            json!(42),
            json!(["/bin/a.sh"]),
            json!({"commands": 7}),
        ] {
            let mut w = Vec::new();
            assert!(
                commands(Some(&garbage), &ctx, &mut w).is_empty(),
                "{garbage}"
            );
            assert_eq!(w.len(), 1, "{garbage}: {w:?}");
            assert!(w[0].starts_with("Records[2].detail.parameters"), "{w:?}");
        }
        let mut w = Vec::new();
        let mixed = json!({"commands": ["/bin/a.sh", 3, null]});
        assert_eq!(commands(Some(&mixed), &ctx, &mut w), vec!["/bin/a.sh"]);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn hook_names_follow_the_transition() {
        assert_eq!(
            hook_event_name(LifecycleTransition::Launching),
            "EC2 Instance-launch Lifecycle Action"
        );
        assert_eq!(
            hook_event_name(LifecycleTransition::Terminating),
            "EC2 Instance-terminate Lifecycle Action"
        );
    }

    #[test]
    fn top_level_shapes() {
        assert_eq!(unwrap(&json!([1, 2])), vec![Err(EventError::UnknownShape)]);
        assert_eq!(unwrap(&json!("x")), vec![Err(EventError::UnknownShape)]);
        assert_eq!(unwrap(&json!({})), vec![Err(EventError::UnknownShape)]);
        assert_eq!(
            unwrap(&json!({"Records": []})),
            vec![Err(EventError::MissingField {
                field: "Records[0]".into()
            })]
        );
        assert_eq!(
            unwrap(&json!({"Records": {}})),
            vec![Err(EventError::InvalidField {
                field: "Records".into(),
                expected: "an array of records".into()
            })]
        );
        // Inside an envelope, JSON of another kind is "not supported" for its record.
        let out = unwrap(&json!({"Records": [1, {"eventSource": "aws:s3"}]}));
        assert!(
            matches!(&out[..], [Ok(Parsed::NotSupported(a)), Ok(Parsed::NotSupported(b))]
                if a.reason == "Records[0]: a record that is not an object"
                && b.reason == "Records[1]: a record of aws:s3, not SNS or SQS"),
            "{out:?}"
        );
    }

    #[test]
    fn unknown_sns_message_type_is_unknown_shape() {
        let out = unwrap(&json!({"Type": "Greeting", "Message": "{}"}));
        assert_eq!(out, vec![Err(EventError::UnknownShape)]);
    }

    #[test]
    fn sns_subscription_confirmation_is_not_supported() {
        let out = unwrap(&json!({
            "Type": "SubscriptionConfirmation",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
            "Message": "You have chosen to subscribe"
        }));
        assert!(matches!(
            out.as_slice(),
            [Ok(Parsed::NotSupported(n))] if n.reason.contains("SubscriptionConfirmation")
        ));
    }
}
