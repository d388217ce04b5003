//! Fuzz target: `lifecycle::event::parse`, the entry the CLI (`lifecycle handle`, `simulate`)
//! and the Lambda use on the raw bytes they receive.
//!
//! Properties beyond "no panic":
//! - parsing is deterministic, and `parse` agrees with `parse_value` on the decoded JSON;
//! - the result vector is never empty, and a `Records` array of N items gives N results;
//! - every error renders a non-empty message, and a field error names its field;
//! - an event serialises to JSON, and its lifecycle data survives the JSON round trip that a
//!   command record's `LifecycleData` takes through the store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifecycle::event::{self, EventError, LifecycleData, Parsed};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let first = event::parse(data);
    assert_eq!(first, event::parse(data), "parse is not deterministic");
    let records = match first {
        Err(e) => {
            assert!(matches!(e, EventError::NotJson(_)), "top-level error {e:?}");
            check_error(&e);
            return;
        }
        Ok(records) => records,
    };
    assert!(!records.is_empty(), "parse returned no result at all");
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        assert_eq!(records, event::parse_value(&value), "parse != parse_value");
        if let Some(list) = value.get("Records").and_then(Value::as_array)
            && !list.is_empty()
        {
            assert_eq!(records.len(), list.len(), "one result per record");
        }
    }
    for record in &records {
        match record {
            Ok(Parsed::Event(e)) => {
                let json = serde_json::to_string(e).expect("an event serialises");
                assert!(!json.is_empty());
                let _ = (
                    e.resource_instance(),
                    e.lifecycle_result(false),
                    e.is_our_command(),
                );
                if let Some(l) = &e.lifecycle {
                    let stored = serde_json::to_value(l).expect("lifecycle data serialises");
                    let back: LifecycleData =
                        serde_json::from_value(stored).expect("lifecycle data deserialises");
                    assert_eq!(&back, l, "LifecycleData JSON round trip");
                }
            }
            Ok(Parsed::NotSupported(n)) => assert!(!n.reason.is_empty(), "empty reason"),
            Err(e) => check_error(e),
        }
    }
});

fn check_error(e: &EventError) {
    assert!(!e.to_string().is_empty(), "empty error message for {e:?}");
    match e {
        EventError::MissingField { field } | EventError::InvalidField { field, .. } => {
            assert!(!field.is_empty(), "error names no field: {e:?}");
        }
        _ => {}
    }
}
