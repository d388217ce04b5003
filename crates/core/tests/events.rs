//! Integration tests of the event parser (SPEC 2.1–2.3): every envelope and source, from
//! fixtures, plus table-driven invalid input and property tests that `parse` never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifecycle::event::{
    Event, EventError, LifecycleData, LifecycleTransition, Parsed, Source, parse, parse_value,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SNS_LAUNCH: &str = include_str!("fixtures/sns-launch-lifecycle.json");
const SNS_COMMAND: &str = include_str!("fixtures/sns-command-status-change.json");
const SNS_SCHEDULED: &str = include_str!("fixtures/sns-scheduled.json");
const COMMAND_RECORD: &str = include_str!("fixtures/command-join-cluster.json");
const NODE_RECORD: &str = include_str!("fixtures/node-worker-ready.json");
const EB_LAUNCH: &str = include_str!("fixtures/eventbridge-launch.json");
const EB_TERMINATE: &str = include_str!("fixtures/eventbridge-terminate.json");
const EB_SSM_SUCCESS: &str = include_str!("fixtures/eventbridge-ssm-success.json");
const EB_SSM_INPROGRESS: &str = include_str!("fixtures/eventbridge-ssm-inprogress.json");
const EB_SSM_INVOCATION_FAILED: &str =
    include_str!("fixtures/eventbridge-ssm-invocation-failed.json");
const EB_SCHEDULED: &str = include_str!("fixtures/eventbridge-scheduled.json");
const SQS_LAUNCH: &str = include_str!("fixtures/sqs-launch.json");
const SQS_SNS_TERMINATE: &str = include_str!("fixtures/sqs-sns-terminate.json");
const SQS_BATCH: &str = include_str!("fixtures/sqs-batch.json");
const SQS_HOOK_TERMINATE: &str = include_str!("fixtures/sqs-hook-terminate.json");
const HOOK_DIRECT_LAUNCH: &str = include_str!("fixtures/hook-direct-launch.json");
const HOOK_TEST: &str = include_str!("fixtures/hook-test-notification.json");
const FOREIGN: &str = include_str!("fixtures/foreign-source.json");

const ALL_FIXTURES: &[&str] = &[
    SNS_LAUNCH,
    SNS_COMMAND,
    SNS_SCHEDULED,
    COMMAND_RECORD,
    NODE_RECORD,
    EB_LAUNCH,
    EB_TERMINATE,
    EB_SSM_SUCCESS,
    EB_SSM_INPROGRESS,
    EB_SSM_INVOCATION_FAILED,
    EB_SCHEDULED,
    SQS_LAUNCH,
    SQS_SNS_TERMINATE,
    SQS_BATCH,
    SQS_HOOK_TERMINATE,
    HOOK_DIRECT_LAUNCH,
    HOOK_TEST,
    FOREIGN,
];

// ---------------------------------------------------------------------------------------------
// helpers

fn results(input: &str) -> Vec<Result<Parsed, EventError>> {
    parse(input.as_bytes()).expect("input is JSON")
}

fn one(input: &str) -> Result<Parsed, EventError> {
    let mut all = results(input);
    assert_eq!(all.len(), 1, "expected exactly one record: {all:?}");
    all.remove(0)
}

fn event_of(r: Result<Parsed, EventError>) -> Event {
    match r {
        Ok(Parsed::Event(e)) => *e,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn reason_of(r: Result<Parsed, EventError>) -> String {
    match r {
        Ok(Parsed::NotSupported(n)) => n.reason,
        other => panic!("expected not supported, got {other:?}"),
    }
}

fn error_of(r: Result<Parsed, EventError>) -> EventError {
    match r {
        Err(e) => e,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

fn event(input: &str) -> Event {
    event_of(one(input))
}

fn lifecycle(e: &Event) -> &LifecycleData {
    e.lifecycle.as_ref().expect("lifecycle data")
}

fn missing(field: &str) -> EventError {
    EventError::MissingField {
        field: field.into(),
    }
}

fn invalid(field: &str, expected: &str) -> EventError {
    EventError::InvalidField {
        field: field.into(),
        expected: expected.into(),
    }
}

fn metadata(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

fn value(input: &str) -> Value {
    serde_json::from_str(input).expect("fixture is JSON")
}

// ---------------------------------------------------------------------------------------------
// the original, SNS-wrapped fixtures

#[test]
fn sns_launch_lifecycle() {
    let e = event(SNS_LAUNCH);
    assert_eq!(e.source, Source::AutoScaling);
    assert_eq!(e.name, "EC2 Instance-launching Lifecycle Action");
    assert_eq!(
        e.id.as_deref(),
        Some("babaf42e-aac5-8e19-cf36-83307aa13879")
    );
    assert_eq!(e.time.as_deref(), Some("2018-11-08T17:02:04Z"));
    assert_eq!(e.region.as_deref(), Some("eu-central-1"));
    assert_eq!(e.account.as_deref(), Some("390028087082"));
    assert_eq!(
        e.resources,
        vec![
            "arn:aws:autoscaling:eu-central-1:390028087082:autoScalingGroup:ac97bd5b-c95f-4027-adb0-eec3b99987e2:autoScalingGroupName/docker-swarm-manager-live"
        ]
    );
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-007de616626a94600");
    assert_eq!(l.auto_scaling_group, "docker-swarm-manager-live");
    assert_eq!(l.hook_name, "docker-swarm-manager-live-on-launch");
    assert_eq!(
        l.token.as_deref(),
        Some("05e8ec37-956a-4fe1-be7c-e43b4e4f9cd9")
    );
    assert_eq!(l.transition, LifecycleTransition::Launching);
    assert_eq!(
        l.metadata,
        metadata(&[
            ("type", "manager"),
            ("name", "docker-swarm"),
            ("account", "tooling"),
            ("environment", "live"),
            ("managerZoneId", "Z16LNJ5269K3PA"),
            (
                "managerDnsName",
                "docker-manager.tooling.live.7nxt.internal"
            ),
            ("managerDnsTtl", "60"),
            ("debug", "false"),
        ])
    );
    assert_eq!(l.origin, None);
    assert_eq!(l.destination, None);
    assert!(e.warnings.is_empty());
    assert!(e.is_autoscaling() && e.is_lifecycle() && e.is_launching());
    assert!(!e.is_terminating() && !e.is_command() && !e.is_scheduled());
    assert!(e.status_successful());
    assert_eq!(e.command, None);
    assert_eq!(e.rule, None);
}

#[test]
fn sns_command_status_change() {
    let e = event(SNS_COMMAND);
    assert_eq!(e.source, Source::Ssm);
    assert_eq!(e.name, "EC2 Command Status-change Notification");
    assert_eq!(
        e.id.as_deref(),
        Some("a3829ee7-ec13-7d7e-0ae2-7b5f889f3bda")
    );
    assert_eq!(e.time.as_deref(), Some("2018-11-08T18:43:35Z"));
    let c = e.command.as_ref().expect("command status");
    assert_eq!(c.command_id, "2730b156-4765-4ae7-b870-56c380012717");
    assert_eq!(c.status, "Success");
    assert_eq!(c.document_name.as_deref(), Some("AWS-RunShellScript"));
    assert_eq!(c.commands, vec!["/bin/join_cluster.sh"]);
    assert_eq!(c.instance_ids, vec!["i-0f5eb341c49cb9185"]);
    assert_eq!(e.resource_instance(), Some("i-0f5eb341c49cb9185"));
    assert!(e.is_command() && e.status_successful() && !e.is_lifecycle());
    assert!(e.warnings.is_empty());
}

#[test]
fn sns_scheduled() {
    let e = event(SNS_SCHEDULED);
    assert_eq!(e.source, Source::Schedule);
    assert_eq!(e.name, "backup");
    assert_eq!(e.rule.as_deref(), Some("backup"));
    assert_eq!(
        e.id.as_deref(),
        Some("7b51be95-c81e-c009-2435-95c2efd5a56f")
    );
    assert_eq!(e.account.as_deref(), Some("384726357869"));
    assert_eq!(
        e.resources,
        vec!["arn:aws:events:eu-central-1:384726357869:rule/backup"]
    );
    assert!(e.is_scheduled() && !e.is_lifecycle() && e.status_successful());
}

#[test]
fn stored_records_are_not_events() {
    assert_eq!(error_of(one(COMMAND_RECORD)), EventError::UnknownShape);
    assert_eq!(error_of(one(NODE_RECORD)), EventError::UnknownShape);
}

// ---------------------------------------------------------------------------------------------
// direct EventBridge events

#[test]
fn eventbridge_launch() {
    let e = event(EB_LAUNCH);
    assert_eq!(e.source, Source::AutoScaling);
    assert_eq!(e.name, "EC2 Instance-launch Lifecycle Action");
    assert_eq!(
        e.id.as_deref(),
        Some("4f7c2d1e-9a3b-4c5d-8e6f-0a1b2c3d4e5f")
    );
    assert_eq!(e.time.as_deref(), Some("2025-01-06T09:15:02Z"));
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));
    assert_eq!(e.account.as_deref(), Some("111122223333"));
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0a1b2c3d4e5f60718");
    assert_eq!(l.auto_scaling_group, "consul-server-prod");
    assert_eq!(l.hook_name, "consul-server-prod-on-launch");
    assert_eq!(
        l.token.as_deref(),
        Some("8d2f4a6c-1b3e-4d5f-9a7c-2e4f6a8c0b1d")
    );
    assert_eq!(l.transition, LifecycleTransition::Launching);
    assert_eq!(
        l.metadata,
        metadata(&[
            ("type", "server"),
            ("name", "consul"),
            ("environment", "prod"),
            ("dnsZoneId", "Z0EXAMPLE1234"),
            ("dnsTtl", "60"),
        ])
    );
    assert_eq!(
        (l.origin.as_deref(), l.destination.as_deref()),
        (None, None)
    );
    assert!(!l.is_from_warm_pool() && !l.is_warm_pool_entry());
    assert!(e.is_launching() && e.warnings.is_empty());
}

#[test]
fn eventbridge_terminate_into_warm_pool() {
    let e = event(EB_TERMINATE);
    assert_eq!(e.name, "EC2 Instance-terminate Lifecycle Action");
    assert_eq!(
        e.id.as_deref(),
        Some("c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f")
    );
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0f1e2d3c4b5a69788");
    assert_eq!(l.hook_name, "consul-server-prod-on-terminate");
    assert_eq!(l.transition, LifecycleTransition::Terminating);
    assert_eq!(
        l.metadata,
        metadata(&[("type", "server"), ("name", "consul"), ("drain", "true")])
    );
    assert_eq!(l.origin.as_deref(), Some("AutoScalingGroup"));
    assert_eq!(l.destination.as_deref(), Some("WarmPool"));
    assert!(l.is_warm_pool_entry() && !l.is_from_warm_pool());
    assert!(e.is_terminating() && !e.is_launching());
}

#[test]
fn eventbridge_ssm_success_with_object_parameters() {
    let e = event(EB_SSM_SUCCESS);
    assert_eq!(e.source, Source::Ssm);
    assert_eq!(e.name, "EC2 Command Status-change Notification");
    assert_eq!(
        e.id.as_deref(),
        Some("7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d")
    );
    let c = e.command.as_ref().expect("command status");
    assert_eq!(c.command_id, "5e1a9c3b-7d2f-4e8a-b6c4-0f9d2a7e3b51");
    assert_eq!(c.status, "Success");
    assert!(c.is_success());
    assert_eq!(c.document_name.as_deref(), Some("AWS-RunShellScript"));
    assert_eq!(
        c.commands,
        vec!["/usr/local/bin/join-cluster.sh", "systemctl restart consul"]
    );
    assert_eq!(
        c.instance_ids,
        vec!["i-0a1b2c3d4e5f60718", "i-01234567890abcdef"]
    );
    assert_eq!(e.resource_instance(), Some("i-0a1b2c3d4e5f60718"));
    assert!(e.warnings.is_empty());
}

#[test]
fn eventbridge_ssm_in_progress_is_not_supported() {
    let reason = reason_of(one(EB_SSM_INPROGRESS));
    assert!(reason.contains("InProgress"), "{reason}");
}

#[test]
fn eventbridge_ssm_invocation_failed() {
    let e = event(EB_SSM_INVOCATION_FAILED);
    assert_eq!(e.name, "EC2 Command Invocation Status-change Notification");
    let c = e.command.as_ref().expect("command status");
    assert_eq!(c.command_id, "a4b3c2d1-e0f9-4a8b-8c7d-6e5f4a3b2c1d");
    assert_eq!(c.status, "Failed");
    assert!(c.commands.is_empty());
    // detail.instance-id and the resource ARN name the same instance: listed once.
    assert_eq!(c.instance_ids, vec!["i-0f1e2d3c4b5a69788"]);
    assert!(!e.status_successful());
}

#[test]
fn ssm_invocation_instance_id_comes_first() {
    let mut v = value(EB_SSM_INVOCATION_FAILED);
    v["resources"] = json!([
        "arn:aws:ec2:eu-west-1:111122223333:instance/i-0aaaaaaaaaaaaaaaa",
        "arn:aws:ec2:eu-west-1:111122223333:instance/i-0f1e2d3c4b5a69788"
    ]);
    let e = event_of(parse_value(&v).remove(0));
    let c = e.command.expect("command status");
    assert_eq!(
        c.instance_ids,
        vec!["i-0f1e2d3c4b5a69788", "i-0aaaaaaaaaaaaaaaa"]
    );
}

#[test]
fn eventbridge_scheduled() {
    let e = event(EB_SCHEDULED);
    assert_eq!(e.source, Source::Schedule);
    assert_eq!(e.name, "nightly-backup");
    assert_eq!(e.rule.as_deref(), Some("nightly-backup"));
    assert_eq!(
        e.id.as_deref(),
        Some("9f8e7d6c-5b4a-4392-8817-0f1e2d3c4b5a")
    );
    assert_eq!(e.time.as_deref(), Some("2025-01-07T02:00:00Z"));
}

#[test]
fn scheduled_rule_on_custom_bus_is_named_by_last_segment() {
    let mut v = value(EB_SCHEDULED);
    v["resources"] = json!(["arn:aws:events:eu-west-1:111122223333:rule/ops-bus/weekly"]);
    let e = event_of(parse_value(&v).remove(0));
    assert_eq!(e.name, "weekly");
    assert_eq!(e.rule.as_deref(), Some("weekly"));
}

#[test]
fn foreign_source_is_not_supported() {
    let reason = reason_of(one(FOREIGN));
    assert!(reason.contains("aws.ec2"), "{reason}");
    assert!(
        reason.contains("EC2 Instance State-change Notification"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------------------------
// SQS, SNS inside SQS, batches

#[test]
fn sqs_wrapping_eventbridge_launch_from_warm_pool() {
    let e = event(SQS_LAUNCH);
    assert_eq!(e.name, "EC2 Instance-launch Lifecycle Action");
    // The EventBridge id, not the SQS message id.
    assert_eq!(
        e.id.as_deref(),
        Some("e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b")
    );
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0123456789abcdef0");
    assert_eq!(
        l.token.as_deref(),
        Some("f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f")
    );
    assert_eq!(
        l.metadata,
        metadata(&[("type", "server"), ("name", "consul")])
    );
    assert!(l.is_from_warm_pool() && !l.is_warm_pool_entry());
}

#[test]
fn sns_inside_sqs_terminate() {
    let e = event(SQS_SNS_TERMINATE);
    assert_eq!(e.name, "EC2 Instance-terminate Lifecycle Action");
    assert_eq!(
        e.id.as_deref(),
        Some("b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e")
    );
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0fedcba9876543210");
    assert_eq!(l.transition, LifecycleTransition::Terminating);
    // Empty NotificationMetadata: empty map and no warning.
    assert!(l.metadata.is_empty());
    assert!(e.warnings.is_empty());
}

#[test]
fn sqs_batch_keeps_order() {
    let all = results(SQS_BATCH);
    assert_eq!(all.len(), 3);
    let mut all = all.into_iter();
    let good = event_of(all.next().expect("record 0"));
    assert_eq!(good.name, "hourly-reconcile");
    assert_eq!(good.rule.as_deref(), Some("hourly-reconcile"));
    assert_eq!(
        error_of(all.next().expect("record 1")),
        missing("Records[1].detail.EC2InstanceId")
    );
    let reason = reason_of(all.next().expect("record 2"));
    assert!(reason.contains("Pending"), "{reason}");
}

#[test]
fn batch_errors_are_per_record() {
    let v = json!({"Records": [
        {"eventSource": "aws:sqs", "messageId": "m-0", "body": "{not json"},
        {"eventSource": "aws:sqs", "messageId": "m-1", "body": "[1, 2]"},
        {"eventSource": "aws:sqs", "messageId": "m-2"},
        {"EventSource": "aws:sns", "Sns": {"MessageId": "m-3", "Message": "{\"x\":"}},
        {"EventSource": "aws:sns"},
        {"eventSource": "aws:kinesis", "kinesis": {}},
        {"eventSource": "aws:sqs", "body": "{\"Type\":\"Notification\",\"Message\":\"nope\"}"},
        {"eventSource": "aws:sqs", "body": 5},
        {"eventSource": "aws:sqs", "messageId": "m-8", "body": "{\"hello\":\"world\"}"},
    ]});
    let all = parse_value(&v);
    assert_eq!(all.len(), 9);
    match &all[0] {
        Err(EventError::NotJson(msg)) => assert!(msg.starts_with("Records[0].body: "), "{msg}"),
        other => panic!("{other:?}"),
    }
    // JSON of another kind inside an envelope is "not supported" for its record, never an
    // error (SPEC 8): a poison message must not block its queue.
    assert_eq!(
        reason_of(all[1].clone()),
        "Records[1]: JSON that is not an object"
    );
    assert_eq!(all[2], Err(missing("Records[2].body")));
    match &all[3] {
        Err(EventError::NotJson(msg)) => {
            assert!(msg.starts_with("Records[3].Sns.Message: "), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(all[4], Err(missing("Records[4].Sns")));
    assert_eq!(
        reason_of(all[5].clone()),
        "Records[5]: a record of aws:kinesis, not SNS or SQS"
    );
    match &all[6] {
        Err(EventError::NotJson(msg)) => {
            assert!(msg.starts_with("Records[6].body.Message: "), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(all[7], Err(invalid("Records[7].body", "a JSON string")));
    assert!(
        reason_of(all[8].clone()).starts_with("Records[8]: JSON that is no event of ours"),
        "{:?}",
        all[8]
    );
}

#[test]
fn empty_records_is_one_error() {
    assert_eq!(
        parse(br#"{"Records": []}"#).expect("json"),
        vec![Err(missing("Records[0]"))]
    );
}

#[test]
fn sns_notification_at_top_level_is_unwrapped() {
    let inner = value(EB_SCHEDULED);
    let v = json!({
        "Type": "Notification",
        "MessageId": "1f2e3d4c-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:eu-west-1:111122223333:cluster-lifecycle",
        "Message": inner.to_string(),
    });
    let e = event_of(parse_value(&v).remove(0));
    assert_eq!(e.rule.as_deref(), Some("nightly-backup"));
}

// ---------------------------------------------------------------------------------------------
// lifecycle hooks notifying SNS/SQS directly

#[test]
fn hook_direct_launch_via_sns() {
    let e = event(HOOK_DIRECT_LAUNCH);
    assert_eq!(e.source, Source::AutoScaling);
    assert_eq!(e.name, "EC2 Instance-launch Lifecycle Action");
    // The SNS message id: the message has no EventBridge id.
    assert_eq!(
        e.id.as_deref(),
        Some("9a0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d")
    );
    assert_eq!(e.time.as_deref(), Some("2025-01-10T12:00:07.482Z"));
    assert_eq!(e.account.as_deref(), Some("111122223333"));
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));
    assert!(e.resources.is_empty());
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0badc0ffee0ddf00d");
    assert_eq!(l.auto_scaling_group, "consul-server-prod");
    assert_eq!(l.hook_name, "consul-server-prod-on-launch");
    assert_eq!(
        l.token.as_deref(),
        Some("7f8a9b0c-1d2e-4f3a-9b4c-5d6e7f8a9b0c")
    );
    assert_eq!(l.transition, LifecycleTransition::Launching);
    assert_eq!(
        l.metadata,
        metadata(&[("type", "client"), ("name", "consul")])
    );
    assert_eq!(l.origin.as_deref(), Some("EC2"));
    assert_eq!(l.destination.as_deref(), Some("AutoScalingGroup"));
    assert!(e.is_launching() && e.warnings.is_empty());
}

#[test]
fn hook_direct_terminate_via_sqs() {
    let e = event(SQS_HOOK_TERMINATE);
    assert_eq!(e.name, "EC2 Instance-terminate Lifecycle Action");
    assert_eq!(
        e.id.as_deref(),
        Some("3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a")
    );
    assert_eq!(e.region.as_deref(), Some("eu-west-1"));
    let l = lifecycle(&e);
    assert_eq!(l.instance_id, "i-0c0ffee15600d1e55");
    assert_eq!(l.transition, LifecycleTransition::Terminating);
    assert!(l.metadata.is_empty());
    assert!(e.is_terminating());
}

#[test]
fn hook_message_without_envelope_uses_request_id() {
    let v = json!({
        "Service": "AWS Auto Scaling",
        "AccountId": "111122223333",
        "RequestId": "req-1",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "AutoScalingGroupName": "g",
        "LifecycleHookName": "h",
        "EC2InstanceId": "i-1",
        "Time": "2025-01-10T23:45:12.118Z",
    });
    let e = event_of(parse_value(&v).remove(0));
    assert_eq!(e.id.as_deref(), Some("req-1"));
    assert_eq!(e.region, None);
    assert_eq!(lifecycle(&e).token, None);
}

#[test]
fn hook_test_notification_is_not_supported() {
    let reason = reason_of(one(HOOK_TEST));
    assert!(reason.contains("autoscaling:TEST_NOTIFICATION"), "{reason}");
}

#[test]
fn plain_auto_scaling_notification_is_not_supported() {
    let v = json!({
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:EC2_INSTANCE_LAUNCH",
        "EC2InstanceId": "i-1",
        "AutoScalingGroupName": "g",
    });
    let reason = reason_of(parse_value(&v).remove(0));
    assert!(
        reason.contains("autoscaling:EC2_INSTANCE_LAUNCH"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------------------------
// classification details

#[test]
fn lifecycle_is_classified_by_transition_not_wording() {
    // The detail-type says launch; the transition says terminate: the transition wins.
    let mut v = value(EB_LAUNCH);
    v["detail"]["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_TERMINATING");
    let e = event_of(parse_value(&v).remove(0));
    assert!(e.is_terminating());
    assert_eq!(e.name, "EC2 Instance-launch Lifecycle Action");

    for detail_type in [
        "EC2 Instance-launch Lifecycle Action",
        "EC2 Instance-launching Lifecycle Action",
        "EC2 Instance-terminate Lifecycle Action",
        "Something New From Auto Scaling",
    ] {
        let mut v = value(EB_LAUNCH);
        v["detail-type"] = json!(detail_type);
        let e = event_of(parse_value(&v).remove(0));
        assert!(e.is_launching(), "{detail_type}");
        assert_eq!(e.name, detail_type);
    }

    // Without a detail-type, the name follows the transition.
    let mut v = value(EB_TERMINATE);
    v.as_object_mut().expect("object").remove("detail-type");
    let e = event_of(parse_value(&v).remove(0));
    assert_eq!(e.name, "EC2 Instance-terminate Lifecycle Action");
}

#[test]
fn other_autoscaling_events_are_not_supported() {
    let v = json!({
        "version": "0", "id": "x", "source": "aws.autoscaling",
        "detail-type": "EC2 Instance Launch Successful",
        "resources": [], "detail": {"StatusCode": "InProgress", "EC2InstanceId": "i-1"}
    });
    let reason = reason_of(parse_value(&v).remove(0));
    assert!(
        reason.contains("EC2 Instance Launch Successful"),
        "{reason}"
    );

    let mut v = value(EB_LAUNCH);
    v["detail"]["LifecycleTransition"] = json!("autoscaling:TEST_NOTIFICATION");
    let reason = reason_of(parse_value(&v).remove(0));
    assert!(reason.contains("autoscaling:TEST_NOTIFICATION"), "{reason}");
}

#[test]
fn other_ssm_and_events_kinds_are_not_supported() {
    let mut v = value(EB_SSM_SUCCESS);
    v["detail-type"] = json!("EC2 Automation Step Status-change Notification");
    let reason = reason_of(parse_value(&v).remove(0));
    assert!(reason.contains("EC2 Automation Step"), "{reason}");

    let mut v = value(EB_SCHEDULED);
    v["detail-type"] = json!("Rule Disabled");
    let reason = reason_of(parse_value(&v).remove(0));
    assert!(reason.contains("Rule Disabled"), "{reason}");
}

#[test]
fn every_non_terminal_ssm_status_is_not_supported() {
    for status in ["Pending", "InProgress", "Delayed", "Cancelling"] {
        let mut v = value(EB_SSM_SUCCESS);
        v["detail"]["status"] = json!(status);
        let reason = reason_of(parse_value(&v).remove(0));
        assert!(reason.contains(status), "{reason}");
    }
    for status in lifecycle::event::TERMINAL_COMMAND_STATUSES {
        let mut v = value(EB_SSM_SUCCESS);
        v["detail"]["status"] = json!(status);
        let e = event_of(parse_value(&v).remove(0));
        assert_eq!(e.status_successful(), *status == "Success", "{status}");
    }
}

#[test]
fn ssm_parameters_tolerated_shapes() {
    let cases: Vec<(Value, Vec<&str>, usize)> = vec![
        (json!("{\"commands\":[\"a\",\"b\"]}"), vec!["a", "b"], 0),
        (json!({"commands": ["a"]}), vec!["a"], 0),
        (json!({"commands": "single"}), vec!["single"], 0),
        (json!("{\"commands\":\"single\"}"), vec!["single"], 0),
        (json!({}), vec![], 0),
        (Value::Null, vec![], 0),
        (json!("not json at all"), vec![], 1),
        (json!(17), vec![], 1),
        (json!({"commands": {"nested": true}}), vec![], 1),
    ];
    for (parameters, expected, warnings) in cases {
        let mut v = value(EB_SSM_SUCCESS);
        v["detail"]["parameters"] = parameters.clone();
        let e = event_of(parse_value(&v).remove(0));
        let c = e.command.as_ref().expect("command status");
        assert_eq!(c.commands, expected, "{parameters}");
        assert_eq!(e.warnings.len(), warnings, "{parameters}: {:?}", e.warnings);
    }
    let mut v = value(EB_SSM_SUCCESS);
    v["detail"]
        .as_object_mut()
        .expect("detail")
        .remove("parameters");
    let e = event_of(parse_value(&v).remove(0));
    assert!(e.command.expect("command").commands.is_empty());
}

#[test]
fn metadata_that_is_not_json_is_a_warning() {
    for bad in [
        json!("additional-info"),
        json!("{\"truncated\":"),
        json!(42),
        json!([1]),
    ] {
        let mut v = value(EB_LAUNCH);
        v["detail"]["NotificationMetadata"] = bad.clone();
        let e = event_of(parse_value(&v).remove(0));
        assert!(lifecycle(&e).metadata.is_empty(), "{bad}");
        assert_eq!(e.warnings.len(), 1, "{bad}");
        assert!(e.warnings[0].contains("NotificationMetadata"), "{bad}");
    }
    // An object (not a string) is accepted as is; absent, null or empty is simply empty.
    let mut v = value(EB_LAUNCH);
    v["detail"]["NotificationMetadata"] = json!({"type": "worker"});
    let e = event_of(parse_value(&v).remove(0));
    assert_eq!(lifecycle(&e).metadata, metadata(&[("type", "worker")]));
    assert!(e.warnings.is_empty());
    for empty in [Value::Null, json!(""), json!("  ")] {
        let mut v = value(EB_LAUNCH);
        v["detail"]["NotificationMetadata"] = empty.clone();
        let e = event_of(parse_value(&v).remove(0));
        assert!(
            lifecycle(&e).metadata.is_empty() && e.warnings.is_empty(),
            "{empty}"
        );
    }
}

#[test]
fn lifecycle_data_round_trips_through_its_stored_shape() {
    for fixture in [SNS_LAUNCH, EB_TERMINATE, SQS_LAUNCH, HOOK_DIRECT_LAUNCH] {
        let e = event(fixture);
        let l = lifecycle(&e);
        let stored = serde_json::to_value(l).expect("serialize");
        assert!(stored["NotificationMetadata"].is_object());
        let back: LifecycleData = serde_json::from_value(stored).expect("deserialize");
        assert_eq!(&back, l);
    }
}

// ---------------------------------------------------------------------------------------------
// invalid input, table-driven

/// Removes (`None`) or replaces a field at a dotted path (`detail.EC2InstanceId`).
fn mutate(mut v: Value, path: &str, new: Option<Value>) -> Value {
    let (parent, key) = match path.rsplit_once('.') {
        Some((parent, key)) => (Some(parent), key),
        None => (None, path),
    };
    let target = match parent {
        Some(p) => &mut v[p],
        None => &mut v,
    };
    let obj = target.as_object_mut().expect("object to mutate");
    match new {
        Some(new) => {
            obj.insert(key.to_owned(), new);
        }
        None => {
            obj.remove(key);
        }
    }
    v
}

#[test]
fn invalid_direct_events() {
    let cases: Vec<(&str, &str, Option<Value>, EventError)> = vec![
        // lifecycle: each required field missing
        (
            EB_LAUNCH,
            "detail.EC2InstanceId",
            None,
            missing("detail.EC2InstanceId"),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleTransition",
            None,
            missing("detail.LifecycleTransition"),
        ),
        (
            EB_LAUNCH,
            "detail.AutoScalingGroupName",
            None,
            missing("detail.AutoScalingGroupName"),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleHookName",
            None,
            missing("detail.LifecycleHookName"),
        ),
        (
            EB_LAUNCH,
            "detail.EC2InstanceId",
            Some(Value::Null),
            missing("detail.EC2InstanceId"),
        ),
        (EB_LAUNCH, "detail", None, missing("detail")),
        // lifecycle: wrong types and impossible values
        (
            EB_LAUNCH,
            "detail.EC2InstanceId",
            Some(json!(42)),
            invalid("detail.EC2InstanceId", "a string"),
        ),
        (
            EB_LAUNCH,
            "detail.EC2InstanceId",
            Some(json!("")),
            invalid("detail.EC2InstanceId", "a non-empty string"),
        ),
        (
            EB_LAUNCH,
            "detail.AutoScalingGroupName",
            Some(json!(["g"])),
            invalid("detail.AutoScalingGroupName", "a string"),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleHookName",
            Some(json!({})),
            invalid("detail.LifecycleHookName", "a string"),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleTransition",
            Some(json!(true)),
            invalid("detail.LifecycleTransition", "a string"),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleTransition",
            Some(json!("autoscaling:EC2_INSTANCE_REBOOTING")),
            invalid(
                "detail.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING",
            ),
        ),
        (
            EB_LAUNCH,
            "detail.LifecycleActionToken",
            Some(json!(7)),
            invalid("detail.LifecycleActionToken", "a string"),
        ),
        (
            EB_LAUNCH,
            "detail",
            Some(json!("x")),
            invalid("detail", "an object"),
        ),
        // common fields
        (
            EB_LAUNCH,
            "resources",
            Some(json!("arn")),
            invalid("resources", "an array of strings"),
        ),
        (
            EB_LAUNCH,
            "resources",
            Some(json!(["a", 1])),
            invalid("resources[1]", "a string"),
        ),
        (EB_LAUNCH, "id", Some(json!(1)), invalid("id", "a string")),
        (
            EB_LAUNCH,
            "time",
            Some(json!({})),
            invalid("time", "a string"),
        ),
        (
            EB_LAUNCH,
            "region",
            Some(json!([])),
            invalid("region", "a string"),
        ),
        (
            EB_LAUNCH,
            "account",
            Some(json!(123456789012_u64)),
            invalid("account", "a string"),
        ),
        (
            EB_LAUNCH,
            "source",
            Some(json!(1)),
            invalid("source", "a string"),
        ),
        (EB_LAUNCH, "source", None, missing("source")),
        (
            EB_LAUNCH,
            "detail-type",
            Some(json!(1)),
            invalid("detail-type", "a string"),
        ),
        // SSM
        (
            EB_SSM_SUCCESS,
            "detail.command-id",
            None,
            missing("detail.command-id"),
        ),
        (
            EB_SSM_SUCCESS,
            "detail.status",
            None,
            missing("detail.status"),
        ),
        (
            EB_SSM_SUCCESS,
            "detail.command-id",
            Some(json!(5)),
            invalid("detail.command-id", "a string"),
        ),
        (
            EB_SSM_SUCCESS,
            "detail.status",
            Some(json!(["Success"])),
            invalid("detail.status", "a string"),
        ),
        (
            EB_SSM_SUCCESS,
            "detail.document-name",
            Some(json!(1)),
            invalid("detail.document-name", "a string"),
        ),
        (EB_SSM_SUCCESS, "detail", None, missing("detail")),
        (EB_SSM_SUCCESS, "detail-type", None, missing("detail-type")),
        (
            EB_SSM_INVOCATION_FAILED,
            "detail.instance-id",
            Some(json!(1)),
            invalid("detail.instance-id", "a string"),
        ),
        // schedule
        (EB_SCHEDULED, "resources", None, missing("resources[0]")),
        (
            EB_SCHEDULED,
            "resources",
            Some(json!([])),
            missing("resources[0]"),
        ),
        (
            EB_SCHEDULED,
            "resources",
            Some(json!([3])),
            invalid("resources[0]", "a string"),
        ),
        (
            EB_SCHEDULED,
            "resources",
            Some(json!(["arn:aws:events:eu-west-1:111122223333:rule/"])),
            invalid("resources[0]", "a rule ARN ending in rule/NAME"),
        ),
        (
            EB_SCHEDULED,
            "resources",
            Some(json!(["backup"])),
            invalid("resources[0]", "a rule ARN ending in rule/NAME"),
        ),
        (EB_SCHEDULED, "detail", None, missing("detail")),
        (EB_SCHEDULED, "detail-type", None, missing("detail-type")),
    ];
    for (fixture, path, new, expected) in cases {
        let v = mutate(value(fixture), path, new.clone());
        let got = parse_value(&v);
        assert_eq!(got, vec![Err(expected)], "{path} = {new:?}");
    }
}

#[test]
fn invalid_fields_inside_envelopes_carry_the_record_prefix() {
    // SNS-wrapped lifecycle event missing the instance id.
    let mut v = value(SNS_LAUNCH);
    let inner = v["Records"][0]["Sns"]["Message"].as_str().expect("message");
    let inner = mutate(
        serde_json::from_str(inner).expect("inner json"),
        "detail.EC2InstanceId",
        None,
    );
    v["Records"][0]["Sns"]["Message"] = json!(inner.to_string());
    assert_eq!(
        parse_value(&v),
        vec![Err(missing("Records[0].detail.EC2InstanceId"))]
    );

    // Direct hook message with a wrong-typed field.
    let mut v = value(HOOK_DIRECT_LAUNCH);
    let inner = v["Records"][0]["Sns"]["Message"].as_str().expect("message");
    let inner = mutate(
        serde_json::from_str(inner).expect("inner json"),
        "LifecycleHookName",
        Some(json!(3)),
    );
    v["Records"][0]["Sns"]["Message"] = json!(inner.to_string());
    assert_eq!(
        parse_value(&v),
        vec![Err(invalid("Records[0].LifecycleHookName", "a string"))]
    );
}

#[test]
fn hook_message_missing_fields() {
    let base = json!({
        "Service": "AWS Auto Scaling",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "AutoScalingGroupName": "g",
        "LifecycleHookName": "h",
        "EC2InstanceId": "i-1",
    });
    for key in [
        "LifecycleTransition",
        "AutoScalingGroupName",
        "LifecycleHookName",
        "EC2InstanceId",
    ] {
        let v = mutate(base.clone(), key, None);
        assert_eq!(parse_value(&v), vec![Err(missing(key))], "{key}");
    }
}

#[test]
fn not_json_and_truncated_input() {
    for input in [
        &b""[..],
        b"   ",
        b"not json",
        b"{\"Records\": [",
        b"{\"source\": \"aws.autoscaling\", \"detail\": {",
        b"\xff\xfe\x00",
    ] {
        assert!(
            matches!(parse(input), Err(EventError::NotJson(_))),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let truncated = &EB_LAUNCH.as_bytes()[..EB_LAUNCH.len() / 2];
    assert!(matches!(parse(truncated), Err(EventError::NotJson(_))));
}

#[test]
fn json_that_is_no_event_is_one_unknown_shape() {
    for input in [
        "{}",
        "[]",
        "null",
        "42",
        "\"text\"",
        "{\"hello\":\"world\"}",
    ] {
        assert_eq!(
            parse(input.as_bytes()).expect("json"),
            vec![Err(EventError::UnknownShape)],
            "{input}"
        );
    }
}

#[test]
fn deeply_nested_input_does_not_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse(deep.as_bytes()),
        Err(EventError::NotJson(_))
    ));
    let body = format!(
        "{}{}",
        "{\"a\":".repeat(5_000),
        "1".to_owned() + &"}".repeat(5_000)
    );
    let v = json!({"Records": [{"eventSource": "aws:sqs", "body": body}]});
    assert!(matches!(
        parse_value(&v).as_slice(),
        [Err(EventError::NotJson(_))]
    ));
}

#[test]
fn every_fixture_parses_without_panicking() {
    for fixture in ALL_FIXTURES {
        let out = results(fixture);
        assert!(!out.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// property tests

const KEYS: &[&str] = &[
    "Records",
    "EventSource",
    "eventSource",
    "Sns",
    "Message",
    "MessageId",
    "messageId",
    "body",
    "Type",
    "TopicArn",
    "awsRegion",
    "source",
    "detail-type",
    "detail",
    "id",
    "time",
    "region",
    "account",
    "resources",
    "Service",
    "Event",
    "RequestId",
    "Time",
    "AccountId",
    "EC2InstanceId",
    "LifecycleTransition",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "LifecycleActionToken",
    "NotificationMetadata",
    "Origin",
    "Destination",
    "command-id",
    "status",
    "parameters",
    "commands",
    "document-name",
    "instance-id",
];

const STRINGS: &[&str] = &[
    "",
    "aws:sns",
    "aws:sqs",
    "aws.autoscaling",
    "aws.ssm",
    "aws.events",
    "aws.ec2",
    "Notification",
    "AWS Auto Scaling",
    "autoscaling:TEST_NOTIFICATION",
    "autoscaling:EC2_INSTANCE_LAUNCHING",
    "autoscaling:EC2_INSTANCE_TERMINATING",
    "EC2 Instance-launch Lifecycle Action",
    "EC2 Instance-terminate Lifecycle Action",
    "EC2 Command Status-change Notification",
    "EC2 Command Invocation Status-change Notification",
    "Scheduled Event",
    "Success",
    "InProgress",
    "arn:aws:events:eu-west-1:111122223333:rule/backup",
    "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
    "arn:",
    "/",
    "{}",
    "{\"commands\":[\"x\"]}",
    "{\"commands\":",
    "not json",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Arbitrary JSON mixing the keys and values the parser looks at, including JSON encoded in
/// strings (as in `Sns.Message` and `body`).
fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner.clone()), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            inner.prop_map(|v| Value::String(v.to_string())),
        ]
    })
}

/// A real fixture with some of its fields (top level, `detail`, and the record's decoded
/// message) replaced by arbitrary values or removed.
fn mutated_fixture() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(ALL_FIXTURES),
        prop::collection::vec(
            (
                0..3_u8,
                prop::sample::select(KEYS),
                prop::option::of(arb_json()),
            ),
            0..6,
        ),
    )
        .prop_map(|(fixture, edits)| {
            let mut v = value(fixture);
            for (place, key, new) in edits {
                let target = match place {
                    0 => Some(&mut v),
                    1 => v.get_mut("detail"),
                    _ => v.get_mut("Records").and_then(|r| r.get_mut(0)),
                };
                if let Some(Value::Object(obj)) = target {
                    match new {
                        Some(new) => {
                            obj.insert(key.to_owned(), new);
                        }
                        None => {
                            obj.remove(key);
                        }
                    }
                }
            }
            v
        })
}

fn check_invariants(v: &Value, out: &[Result<Parsed, EventError>]) {
    assert!(!out.is_empty(), "parse_value must always report something");
    if let Some(records) = v.get("Records").and_then(Value::as_array)
        && !records.is_empty()
    {
        assert_eq!(out.len(), records.len(), "one result per record");
    }
    for r in out {
        if let Ok(Parsed::Event(e)) = r {
            match e.source {
                Source::AutoScaling => assert!(e.lifecycle.is_some()),
                Source::Ssm => assert!(e.command.is_some()),
                Source::Schedule => assert!(e.rule.as_deref().is_some_and(|r| !r.is_empty())),
            }
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_mangled_fixtures(
        fixture in prop::sample::select(ALL_FIXTURES),
        cut in 0_usize..4096,
        flip in any::<u8>(),
    ) {
        let mut bytes = fixture.as_bytes().to_vec();
        let at = cut % bytes.len().max(1);
        if let Some(b) = bytes.get_mut(at) {
            *b ^= flip;
        }
        let _ = parse(&bytes);
        let _ = parse(&fixture.as_bytes()[..at]);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_json(v in arb_json()) {
        let out = parse_value(&v);
        check_invariants(&v, &out);
        let bytes = serde_json::to_vec(&v).expect("serialize");
        prop_assert_eq!(parse(&bytes).expect("valid JSON"), out);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_envelopes(
        records in prop::collection::vec(arb_json(), 0..4),
        wrap in 0..3_u8,
    ) {
        let records: Vec<Value> = records
            .into_iter()
            .map(|inner| match wrap {
                0 => json!({
                    "EventSource": "aws:sns",
                    "Sns": {"MessageId": "m", "Message": inner.to_string()}
                }),
                1 => json!({"eventSource": "aws:sqs", "messageId": "m", "body": inner.to_string()}),
                _ => json!({"eventSource": "aws:sqs", "messageId": "m", "body": json!({
                    "Type": "Notification", "MessageId": "n", "Message": inner.to_string()
                }).to_string()}),
            })
            .collect();
        let v = json!({ "Records": records });
        let out = parse_value(&v);
        check_invariants(&v, &out);
    }

    #[test]
    fn parse_never_panics_on_mutated_fixtures(v in mutated_fixture()) {
        let out = parse_value(&v);
        check_invariants(&v, &out);
    }
}

#[test]
fn an_empty_detail_type_names_the_event_by_its_transition() {
    // Found by fuzzing (`scripts/fuzz`): an empty `detail-type` gave an event with an empty
    // name, which no configuration can name.
    let e = event(
        r#"{"source": "aws.autoscaling", "detail-type": " ", "id": "e-1",
            "detail": {"LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                       "EC2InstanceId": "i-1", "AutoScalingGroupName": "g",
                       "LifecycleHookName": "h", "LifecycleActionToken": "t"}}"#,
    );
    assert_eq!(e.name, "EC2 Instance-launch Lifecycle Action");
}
