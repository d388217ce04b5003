//! Faults moto cannot produce — throttling, 5xx, a connection refused, access denied — and the
//! [`FaultKind`] each is reported with (only `Transient` is retried), with the AWS error code
//! and HTTP status kept. The fault is injected by a canned HTTP endpoint on 127.0.0.1 that
//! answers every request with the response AWS documents for that fault (status, error code
//! and body shape of the service's protocol), and the real SDK client talks to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use lifecycle::event::{LifecycleData, LifecycleResult, LifecycleTransition};
use lifecycle::{Fault, FaultKind};
use lifecycle_aws::{AutoScalingActions, DynamoStore};
use lifecycle_embedded::ManualClock;
use lifecycle_runtime::capability::{ActionState, LifecycleActions, NodeStore};
use serde_json::Map;
use support::proxy::read_request;
use support::sdk_config;

/// Serves `status`, `content_type` and `body` to every connection, on a free loopback port.
fn canned(status: u16, content_type: &'static str, body: &'static str) -> String {
    canned_sequence(content_type, vec![(status, body)])
}

/// Serves `replies` (status, body) in turn, one per connection, the last one from then on.
fn canned_sequence(content_type: &'static str, replies: Vec<(u16, &'static str)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut replies = replies.into_iter();
        let mut last = None;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            // The whole request, head and body, before answering: a reply sent while the
            // client is still writing could be lost in a reset connection.
            if s.set_read_timeout(Some(Duration::from_secs(10))).is_err()
                || read_request(&mut s).is_err()
            {
                continue;
            }
            if let Some(next) = replies.next() {
                last = Some(next);
            }
            let Some((status, body)) = last else { return };
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: canned\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn the_canned_server_answers_only_a_whole_request() {
    let endpoint = canned(500, "text/plain", "x");
    let mut s = TcpStream::connect(endpoint.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut nothing = [0u8; 16];
    // The head split in the middle of a header, then only part of the body.
    for part in [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Le",
        "ngth: 5\r\n\r\nab",
    ] {
        s.write_all(part.as_bytes()).unwrap();
        s.flush().unwrap();
        thread::sleep(Duration::from_millis(50));
        let early = s.read(&mut nothing);
        assert!(
            early.as_ref().is_err_and(|e| matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
            "answered before the whole request: {early:?}"
        );
    }
    s.write_all(b"cde").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 500 "), "{reply:?}");
    assert!(reply.ends_with("\r\n\r\nx"), "{reply:?}");
}

async fn dynamo_get(endpoint: &str) -> Fault {
    DynamoStore::new(&sdk_config(endpoint).await, "t")
        .get("i-1")
        .await
        .unwrap_err()
}

#[tokio::test]
async fn dynamodb_throttling_and_server_errors_are_transient() {
    let throttled = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
    );
    let e = dynamo_get(&throttled).await;
    assert_eq!(e.kind(), FaultKind::Transient, "{e:?}");
    assert_eq!(e.code(), Some("ProvisionedThroughputExceededException"));
    assert_eq!(e.status(), Some(400));
    assert!(
        e.to_string()
            .contains("ProvisionedThroughputExceededException"),
        "{e}"
    );

    let internal = canned(
        500,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazon.coral.service#InternalFailure","message":"internal"}"#,
    );
    let e = dynamo_get(&internal).await;
    assert_eq!(e.kind(), FaultKind::Transient, "{e:?}");
    assert_eq!(e.code(), Some("InternalFailure"));
    assert_eq!(e.status(), Some(500));
}

#[tokio::test]
async fn dynamodb_validation_errors_are_permanent() {
    let invalid = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"One or more parameter values were invalid"}"#,
    );
    let e = dynamo_get(&invalid).await;
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    assert_eq!(e.code(), Some("ValidationException"));
    assert!(e.to_string().contains("ValidationException"), "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let e = dynamo_get(&endpoint).await;
    assert_eq!(e.kind(), FaultKind::Transient, "{e:?}");
    assert_eq!((e.code(), e.status()), (None, None), "{e:?}");
}

#[tokio::test]
async fn dynamodb_access_denied_is_permanent() {
    let denied = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User: arn:aws:iam::123456789012:user/x is not authorized to perform: dynamodb:GetItem"}"#,
    );
    let e = dynamo_get(&denied).await;
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    assert_eq!(e.code(), Some("AccessDeniedException"));
    assert!(
        e.to_string()
            .starts_with("GetItem: AccessDeniedException: "),
        "{e}"
    );
}

#[tokio::test]
async fn a_failed_condition_is_a_conflict_with_the_status_found() {
    let failed = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"Ident":{"S":"i-1"},"ItemStatus":{"S":"draining"}}}"#,
    );
    let store = DynamoStore::new(&sdk_config(&failed).await, "t");
    let e = store
        .set_status("i-1", "ready", "joined", None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        Fault::Conflict {
            id: "i-1".into(),
            expected: "ready".into(),
            found: "draining".into(),
        }
    );
    assert_eq!(e.kind(), FaultKind::Conflict);
    // The same answer to a property write: the node is not in the table.
    let e = store
        .set_properties(
            "i-1",
            &serde_json::json!({"A": 1}).as_object().unwrap().clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(e, Fault::MissingNode { id: "i-1".into() });
}

fn data() -> LifecycleData {
    LifecycleData {
        instance_id: "i-1".into(),
        auto_scaling_group: "g".into(),
        hook_name: "h".into(),
        token: Some("t".into()),
        transition: LifecycleTransition::Launching,
        metadata: Map::new(),
        origin: None,
        destination: None,
        due_at: None,
    }
}

#[tokio::test]
async fn auto_scaling_throttling_is_transient() {
    let throttled = canned(
        400,
        "text/xml",
        "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>canned</RequestId></ErrorResponse>",
    );
    let asg = AutoScalingActions::new(
        &sdk_config(&throttled).await,
        Arc::new(ManualClock::default()),
    );
    let e = asg
        .complete(&data(), LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Transient, "{e:?}");
    assert_eq!(
        (e.code(), e.status()),
        (Some("Throttling"), Some(400)),
        "{e:?}"
    );
    assert!(e.to_string().contains("Throttling"), "{e}");
}

#[tokio::test]
async fn auto_scaling_validation_errors_are_permanent() {
    let invalid = canned(
        400,
        "text/xml",
        "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>AutoScalingGroup name not found - no such group: g</Message></Error><RequestId>canned</RequestId></ErrorResponse>",
    );
    let asg = AutoScalingActions::new(
        &sdk_config(&invalid).await,
        Arc::new(ManualClock::default()),
    );
    let e = asg
        .complete(&data(), LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    assert_eq!(e.code(), Some("ValidationError"), "{e:?}");
}

#[tokio::test]
async fn auto_scaling_access_denied_is_permanent() {
    let denied = canned(
        403,
        "text/xml",
        "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: autoscaling:CompleteLifecycleAction</Message></Error><RequestId>canned</RequestId></ErrorResponse>",
    );
    let asg = AutoScalingActions::new(&sdk_config(&denied).await, Arc::new(ManualClock::default()));
    let e = asg
        .complete(&data(), LifecycleResult::Continue)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Permanent, "{e:?}");
    assert_eq!(
        (e.code(), e.status()),
        (Some("AccessDenied"), Some(403)),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with("CompleteLifecycleAction: AccessDenied: "),
        "{e}"
    );
}

#[tokio::test]
async fn no_active_lifecycle_action_is_not_a_failure() {
    // AWS's answer for an action that is over, by token and by instance id alike. Between
    // the two, the instance's lifecycle state: it still waits in `Pending:Wait` (the token
    // was dead, yet an action like the event's waits), so the instance id is tried.
    const OVER: &str = "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>No active Lifecycle Action found with instance ID i-1</Message></Error><RequestId>canned</RequestId></ErrorResponse>";
    const WAITING: &str = "<DescribeAutoScalingInstancesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><DescribeAutoScalingInstancesResult><AutoScalingInstances><member><InstanceId>i-1</InstanceId><AutoScalingGroupName>g</AutoScalingGroupName><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>Pending:Wait</LifecycleState><HealthStatus>HEALTHY</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member></AutoScalingInstances></DescribeAutoScalingInstancesResult><ResponseMetadata><RequestId>canned</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>";
    let over = canned_sequence(
        "text/xml",
        vec![
            (400, OVER),
            (200, WAITING),
            (400, OVER),
            (400, OVER),
            (200, WAITING),
            (400, OVER),
        ],
    );
    let asg = AutoScalingActions::new(&sdk_config(&over).await, Arc::new(ManualClock::default()));
    assert_eq!(
        asg.complete(&data(), LifecycleResult::Continue)
            .await
            .unwrap(),
        ActionState::NoActiveAction
    );
    assert_eq!(
        asg.heartbeat(&data()).await.unwrap(),
        ActionState::NoActiveAction
    );
}

/// SSM's content type (JSON 1.1 protocol).
const SSM_JSON: &str = "application/x-amz-json-1.1";
const NOT_REGISTERED: &str = r#"{"__type":"InvalidInstanceId","message":"Instances [[i-1]] not in a valid state for account 123456789012"}"#;
const ONLINE: &str = r#"{"InstanceInformationList":[{"InstanceId":"i-1","PingStatus":"Online"}]}"#;

#[tokio::test]
async fn an_ssm_agent_not_registered_yet_is_waited_for() {
    use lifecycle_runtime::Clock;
    use lifecycle_runtime::capability::CommandRunner;
    // SSM answers InvalidInstanceId until the agent registers, then lists it online: the wait
    // goes on through the first answer instead of failing the task.
    let endpoint = canned_sequence(SSM_JSON, vec![(400, NOT_REGISTERED), (200, ONLINE)]);
    let config = sdk_config(&endpoint).await;
    let clock = Arc::new(ManualClock::default());
    let ssm =
        lifecycle_aws::SsmRunner::with_client(aws_sdk_ssm::Client::new(&config), clock.clone());
    let start = clock.now();
    let until = start + Duration::from_secs(60);
    ssm.wait_online(&["i-1".to_owned()], until).await.unwrap();
    assert_eq!(
        clock.now().duration_since(start).unwrap(),
        Duration::from_secs(5)
    );

    // Never registered: the wait ends at its bound with a transient error, not a permanent one.
    let endpoint = canned_sequence(SSM_JSON, vec![(400, NOT_REGISTERED)]);
    let config = sdk_config(&endpoint).await;
    let ssm =
        lifecycle_aws::SsmRunner::with_client(aws_sdk_ssm::Client::new(&config), clock.clone());
    let until = clock.now() + Duration::from_secs(20);
    let e = ssm
        .wait_online(&["i-1".to_owned()], until)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FaultKind::Transient, "{e:?}");
    assert!(e.to_string().contains("not online on i-1"), "{e}");
}
