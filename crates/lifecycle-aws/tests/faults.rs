//! Faults moto cannot produce — throttling, 5xx, a connection refused — and whether each is
//! reported as retryable. The fault is injected by a canned HTTP endpoint on 127.0.0.1 that
//! answers every request with the response AWS documents for that fault (status, error code
//! and body shape of the service's protocol), and the real SDK client talks to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use lifecycle::clock::ManualClock;
use lifecycle::event::{LifecycleData, LifecycleTransition};
use lifecycle::services::{LifecycleActions, LifecycleResult};
use lifecycle::store::{NodeStore, StoreError};
use lifecycle_aws::{AutoScalingActions, DynamoStore};
use serde_json::Map;
use support::sdk_config;

/// Serves `status`, `content_type` and `body` to every connection, on a free loopback port.
fn canned(status: u16, content_type: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 65536];
            // Read the request head and body (small requests: one read is enough for
            // the SDK's single write; extra bytes are ignored).
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: canned\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}")
}

async fn dynamo_get(endpoint: &str) -> StoreError {
    DynamoStore::new(&sdk_config(endpoint).await, "t")
        .get("i-1")
        .await
        .unwrap_err()
}

#[tokio::test]
async fn dynamodb_throttling_and_server_errors_are_retryable() {
    let throttled = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
    );
    let e = dynamo_get(&throttled).await;
    assert!(e.is_retryable(), "{e:?}");
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
    assert!(dynamo_get(&internal).await.is_retryable());
}

#[tokio::test]
async fn dynamodb_validation_errors_are_not_retryable() {
    let invalid = canned(
        400,
        "application/x-amz-json-1.0",
        r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"One or more parameter values were invalid"}"#,
    );
    let e = dynamo_get(&invalid).await;
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("ValidationException"), "{e}");
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    assert!(dynamo_get(&endpoint).await.is_retryable());
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
    }
}

#[tokio::test]
async fn auto_scaling_throttling_is_retryable() {
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
    assert!(e.retryable, "{e:?}");
    assert!(e.message.contains("Throttling"), "{e}");
}

#[tokio::test]
async fn auto_scaling_validation_errors_are_not_retryable() {
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
    assert!(!e.retryable, "{e:?}");
}
