//! Metrics in CloudWatch Embedded Metric Format: one JSON document per record on stdout,
//! which CloudWatch Logs turns into metrics with no API call (SPEC 8).
//!
//! Namespace `AutoscalingLifecycle`; dimension sets `[Function]` and `[Function, Outcome]`;
//! metrics `Events`, `Transitions`, `Failures`, `Conflicts`, `Duplicates`, `Waits` (seconds)
//! and `Duration` (milliseconds).

use std::time::{Duration, SystemTime};

use lifecycle::config::FAILURE_STATE;
use lifecycle::{FaultKind, StopReason};
use lifecycle_runtime::Report;
use serde_json::{Value, json};

/// The metrics' namespace.
pub const NAMESPACE: &str = "AutoscalingLifecycle";

/// What became of a record, as the `Outcome` dimension says it.
pub fn outcome(report: &Report) -> &'static str {
    match (report.stopped_by, report.error_kind) {
        (StopReason::NotSupported, _) => "not_supported",
        (StopReason::Conflict, _) => "conflict",
        (StopReason::Deadline, _) => "deadline",
        (StopReason::Duplicate, _) => "duplicate",
        (_, Some(FaultKind::Invalid)) => "invalid",
        (_, Some(_)) => "error",
        _ => "processed",
    }
}

/// The Embedded Metric Format document for one record of function `function` that took
/// `duration`, stamped `at`.
pub fn document(report: &Report, function: &str, duration: Duration, at: SystemTime) -> Value {
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let timestamp = millis(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let failed = report.error_kind.is_some_and(|k| k != FaultKind::Invalid)
        && report.stopped_by == StopReason::Error
        || report.passed_states.iter().any(|s| s == FAILURE_STATE);
    json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"], ["Function", "Outcome"]],
                "Metrics": [
                    {"Name": "Events", "Unit": "Count"},
                    {"Name": "Transitions", "Unit": "Count"},
                    {"Name": "Failures", "Unit": "Count"},
                    {"Name": "Conflicts", "Unit": "Count"},
                    {"Name": "Duplicates", "Unit": "Count"},
                    {"Name": "Waits", "Unit": "Seconds"},
                    {"Name": "Duration", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Function": function,
        "Outcome": outcome(report),
        "Events": 1,
        "Transitions": report.passed_states.len(),
        "Failures": u8::from(failed),
        "Conflicts": u8::from(report.stopped_by == StopReason::Conflict),
        "Duplicates": u8::from(report.stopped_by == StopReason::Duplicate),
        "Waits": report.waited_ms as f64 / 1000.0,
        "Duration": millis(duration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_that_entered_failure_counts_as_a_failure() {
        let mut r = Report::stopped(StopReason::FailureUnhandled);
        r.passed_states = vec!["joining".into(), "failure".into()];
        r.waited_ms = 1500;
        let d = document(&r, "fn", Duration::from_millis(42), SystemTime::UNIX_EPOCH);
        assert_eq!(d["Outcome"], "processed");
        assert_eq!(d["Failures"], 1);
        assert_eq!(d["Transitions"], 2);
        assert_eq!(d["Waits"], 1.5);
        assert_eq!(d["Duration"], 42);
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
    }

    #[test]
    fn outcomes() {
        let invalid = Report::failed("bad", FaultKind::Invalid);
        assert_eq!(outcome(&invalid), "invalid");
        let d = document(&invalid, "fn", Duration::ZERO, SystemTime::UNIX_EPOCH);
        assert_eq!(d["Failures"], 0, "bad input is not a failure of a node");
        assert_eq!(outcome(&Report::failed("x", FaultKind::Transient)), "error");
        assert_eq!(outcome(&Report::stopped(StopReason::Conflict)), "conflict");
        assert_eq!(
            outcome(&Report::stopped(StopReason::NotSupported)),
            "not_supported"
        );
        assert_eq!(
            outcome(&Report::stopped(StopReason::NoTrigger)),
            "processed"
        );
    }
}
