//! Metrics in CloudWatch Embedded Metric Format: one JSON document per record on stdout,
//! which CloudWatch Logs turns into metrics with no API call (SPEC 8).
//!
//! Namespace `AutoscalingLifecycle`; dimension sets `[Function]` and `[Function, Outcome]`;
//! metrics `Events`, `Transitions`, `Failures`, `Conflicts`, `Duplicates`, `Waits` (seconds)
//! and `Duration` (milliseconds). Each reconciliation sweep adds [`sweep_documents`]: the
//! nodes in each state (`Nodes`, `StuckNodes`, dimensions `[Function, State]`) and what it did
//! (`Sweep*`, dimension `[Function]`).

use std::time::{Duration, SystemTime};

use lifecycle::config::FAILURE_STATE;
use lifecycle::{FaultKind, StopReason};
use lifecycle_runtime::Report;
use lifecycle_runtime::sweep::{Outcome, SweepReport};
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

/// The Embedded Metric Format documents of one sweep, stamped `at`: one per state — every
/// state of `states` (the configuration's: 0 when no node is in it, so a dashboard's line
/// drops to 0 rather than stopping) and any other state a node is in — with `Nodes` and
/// `StuckNodes` under `[Function, State]`; and one with what the sweep did under
/// `[Function]`: `SweepResumes`, `SweepHeartbeats`, `SweepCompletions`, `SweepRemovals`
/// (performed), `GoneNodes`, `FailureNodes` (found), `SweepFailures` (actions that failed)
/// and `SweepReadErrors` (listings or lookups that failed).
pub fn sweep_documents(
    sweep: &SweepReport,
    states: &[String],
    function: &str,
    at: SystemTime,
) -> Vec<Value> {
    let timestamp = u64::try_from(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> =
        states.iter().map(|s| (s.as_str(), (0, 0))).collect();
    for (state, c) in &sweep.states {
        counts.insert(state.as_str(), (c.nodes, c.stuck));
    }
    let mut docs: Vec<Value> = counts
        .into_iter()
        .map(|(state, (nodes, stuck))| {
            json!({
                "_aws": {
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Function", "State"]],
                        "Metrics": [
                            {"Name": "Nodes", "Unit": "Count"},
                            {"Name": "StuckNodes", "Unit": "Count"},
                        ],
                    }],
                },
                "Function": function,
                "State": state,
                "Nodes": nodes,
                "StuckNodes": stuck,
            })
        })
        .collect();
    let done = |action: &str| {
        sweep
            .findings
            .iter()
            .filter(|e| e.finding.action.name() == action)
            .filter(|e| {
                matches!(
                    e.outcome,
                    Outcome::Done { .. } | Outcome::Resumed { error: None, .. }
                )
            })
            .count()
    };
    let found = |action: &str| sweep.actions.get(action).copied().unwrap_or(0);
    docs.push(json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "SweepResumes", "Unit": "Count"},
                    {"Name": "SweepHeartbeats", "Unit": "Count"},
                    {"Name": "SweepCompletions", "Unit": "Count"},
                    {"Name": "SweepRemovals", "Unit": "Count"},
                    {"Name": "GoneNodes", "Unit": "Count"},
                    {"Name": "FailureNodes", "Unit": "Count"},
                    {"Name": "SweepFailures", "Unit": "Count"},
                    {"Name": "SweepReadErrors", "Unit": "Count"},
                ],
            }],
        },
        "Function": function,
        "SweepResumes": done("resume"),
        "SweepHeartbeats": done("heartbeat"),
        "SweepCompletions": done("complete"),
        "SweepRemovals": done("remove"),
        "GoneNodes": found("remove") + found("report_gone"),
        "FailureNodes": found("list_failure"),
        "SweepFailures": sweep.failures(),
        "SweepReadErrors": sweep.errors.len(),
    }));
    docs
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

    #[test]
    fn a_sweep_counts_nodes_per_state_zero_included() {
        use lifecycle::reconcile::Count;
        let mut report = lifecycle_runtime::sweep::SweepReport::new("s", 0, false, vec![]);
        report
            .states
            .insert("ready".into(), Count { nodes: 1, stuck: 0 });
        report
            .states
            .insert("failure".into(), Count { nodes: 1, stuck: 1 });
        report
            .states
            .insert("mystery".into(), Count { nodes: 1, stuck: 0 });
        report.actions.insert("list_failure", 1);
        let states = vec![
            "ready".to_owned(),
            "joining".to_owned(),
            "failure".to_owned(),
        ];
        let docs = sweep_documents(&report, &states, "fn", SystemTime::UNIX_EPOCH);
        let by_state: Vec<(String, u64, u64)> = docs
            .iter()
            .filter(|d| d.get("State").is_some())
            .map(|d| {
                (
                    d["State"].as_str().unwrap_or("").to_owned(),
                    d["Nodes"].as_u64().unwrap_or(99),
                    d["StuckNodes"].as_u64().unwrap_or(99),
                )
            })
            .collect();
        assert_eq!(
            by_state,
            [
                ("failure".to_owned(), 1, 1),
                ("joining".to_owned(), 0, 0),
                ("mystery".to_owned(), 1, 0),
                ("ready".to_owned(), 1, 0),
            ]
        );
        let summary = docs.last().unwrap();
        assert_eq!(summary["FailureNodes"], 1);
        assert_eq!(
            summary["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
    }
}
