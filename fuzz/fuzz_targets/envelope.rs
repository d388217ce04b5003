//! Fuzz target: envelope unwrapping (`crates/core/src/event/envelope.rs`), through the public
//! `lifecycle::event::parse`.
//!
//! Input: a short plan, then a JSON message. The plan wraps the message in up to three layers,
//! outermost first, each an SQS record, an SNS record or an SNS notification, its payload a JSON
//! string or an object, behind up to three foreign records in the `Records` array. Any nesting
//! is tried; for the nestings AWS delivers (SNS notification, SQS record, SNS inside SQS, SNS
//! record) the wrapped message must parse as the bare one does:
//! - an event: the same source, name, lifecycle data, command, rule, time, account, resources
//!   and number of warnings (id and region may come from the envelope);
//! - not supported: the same reason; JSON of no known shape: not supported, never an error;
//! - a field error: the same error, its path behind `Records[N].` inside a `Records` envelope.
//!
//! Plan bytes: `[n, layer_1 .. layer_n, decoys]` with `n = b0 % 4`, a layer's kind `b % 3`
//! (0: SQS record, 1: SNS record, 2: SNS notification) and its payload an object when
//! `b & 4`, and `decoys % 4` foreign records before the wrapped one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifecycle::event::{self, EventError, Parsed};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqs,
    SnsRecord,
    SnsNotification,
}

#[derive(Debug, Clone, Copy)]
struct Layer {
    kind: Kind,
    as_object: bool,
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 4);
    if rest.len() < n + 1 {
        return;
    }
    let (plan, rest) = rest.split_at(n);
    let (&decoys, message) = rest.split_first().unwrap_or((&0, &[]));
    let decoys = usize::from(decoys % 4);
    let layers: Vec<Layer> = plan
        .iter()
        .map(|b| Layer {
            kind: match b % 3 {
                0 => Kind::Sqs,
                1 => Kind::SnsRecord,
                _ => Kind::SnsNotification,
            },
            as_object: b & 4 != 0,
        })
        .collect();
    let Ok(inner) = serde_json::from_slice::<Value>(message) else {
        return;
    };

    // Wrap, innermost layer first.
    let mut wrapped = inner.clone();
    let mut in_records = false;
    for layer in layers.iter().rev() {
        let payload = if layer.as_object && wrapped.is_object() {
            wrapped
        } else {
            Value::String(wrapped.to_string())
        };
        wrapped = match layer.kind {
            Kind::SnsNotification => json!({
                "Type": "Notification",
                "MessageId": "sns-notification-id",
                "TopicArn": "arn:aws:sns:eu-west-1:111122223333:topic",
                "Message": payload,
            }),
            Kind::Sqs | Kind::SnsRecord => {
                let record = if layer.kind == Kind::Sqs {
                    json!({
                        "eventSource": "aws:sqs",
                        "messageId": "sqs-message-id",
                        "awsRegion": "eu-west-1",
                        "body": payload,
                    })
                } else {
                    json!({
                        "EventSource": "aws:sns",
                        "Sns": {
                            "MessageId": "sns-record-id",
                            "TopicArn": "arn:aws:sns:eu-west-1:111122223333:topic",
                            "Message": payload,
                        },
                    })
                };
                let mut list = vec![json!({"eventSource": "aws:s3"}); decoys];
                list.push(record);
                json!({ "Records": list })
            }
        };
        in_records |= matches!(layer.kind, Kind::Sqs | Kind::SnsRecord);
    }

    let bytes = serde_json::to_vec(&wrapped).expect("a JSON value serialises");
    let results = event::parse(&bytes).expect("serialised JSON is JSON");
    assert_eq!(
        results,
        event::parse_value(&wrapped),
        "parse != parse_value"
    );
    assert!(!results.is_empty(), "no result at all");
    for r in &results {
        match r {
            Err(e) => assert!(!e.to_string().is_empty(), "empty message: {e:?}"),
            Ok(Parsed::NotSupported(n)) => assert!(!n.reason.is_empty()),
            Ok(Parsed::Event(_)) => {}
        }
    }

    // The equivalence holds only for the shapes AWS delivers, around a bare message.
    let kinds: Vec<Kind> = layers.iter().map(|l| l.kind).collect();
    let delivered = matches!(
        kinds.as_slice(),
        [] | [Kind::SnsNotification]
            | [Kind::Sqs]
            | [Kind::Sqs, Kind::SnsNotification]
            | [Kind::SnsRecord]
    );
    let Some(obj) = inner.as_object() else {
        return;
    };
    let bare = !obj.contains_key("Records")
        && !(obj.get("Type").is_some_and(Value::is_string)
            && !obj.contains_key("source")
            && !obj.contains_key("detail-type"));
    if !delivered || !bare || layers.is_empty() {
        return;
    }
    let expected_len = if in_records { decoys + 1 } else { 1 };
    assert_eq!(results.len(), expected_len, "{results:?}");
    for decoy in &results[..results.len() - 1] {
        assert!(matches!(decoy, Ok(Parsed::NotSupported(_))), "{decoy:?}");
    }
    let got = &results[results.len() - 1];
    let direct = event::parse_value(&inner);
    assert_eq!(direct.len(), 1, "a bare message is one record: {direct:?}");
    let prefix = if in_records {
        format!("Records[{decoys}].")
    } else {
        String::new()
    };
    match (&direct[0], got) {
        (Ok(Parsed::Event(d)), Ok(Parsed::Event(w))) => {
            assert_eq!(d.source, w.source);
            assert_eq!(d.name, w.name);
            assert_eq!(d.lifecycle, w.lifecycle);
            assert_eq!(d.command, w.command);
            assert_eq!(d.rule, w.rule);
            assert_eq!(d.time, w.time);
            assert_eq!(d.account, w.account);
            assert_eq!(d.resources, w.resources);
            assert_eq!(d.warnings.len(), w.warnings.len());
        }
        (Ok(Parsed::NotSupported(d)), Ok(Parsed::NotSupported(w))) => {
            assert_eq!(d.reason, w.reason);
        }
        (Err(EventError::UnknownShape), Ok(Parsed::NotSupported(_))) => {}
        (
            Err(EventError::MissingField { field: d }),
            Err(EventError::MissingField { field: w }),
        ) => {
            assert_eq!(&format!("{prefix}{d}"), w);
        }
        (
            Err(EventError::InvalidField {
                field: d,
                expected: de,
            }),
            Err(EventError::InvalidField {
                field: w,
                expected: we,
            }),
        ) => {
            assert_eq!(&format!("{prefix}{d}"), w);
            assert_eq!(de, we);
        }
        (d, w) => panic!("bare message gave {d:?}, wrapped in {layers:?} {w:?}"),
    }
});
