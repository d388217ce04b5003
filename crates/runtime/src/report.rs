//! The result of processing one event: what `lifecycle simulate --format json` prints and what
//! the Lambda logs (SPEC 7).

use lifecycle::FaultKind;
use lifecycle::engine::{ReportedError, StopReason};
use serde::Serialize;
use serde_json::Value;

/// One AWS call made (or, in a simulation, that would have been made).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// The service, e.g. `autoscaling`, `ssm`, `route53`, `sns`.
    pub service: &'static str,
    /// The API operation, e.g. `CompleteLifecycleAction`.
    pub operation: &'static str,
    /// Its input, with secret values masked.
    pub input: Value,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The event's name (after a command record renamed it), when it could be read.
    pub event: Option<String>,
    /// The event's id, when it had one.
    pub event_id: Option<String>,
    /// The node the event operated on, if any.
    pub node: Option<String>,
    /// The state processing started from.
    pub initial_state: String,
    /// The state processing ended in.
    pub final_state: String,
    /// The states entered, in order.
    pub passed_states: Vec<String>,
    /// Task and condition names in the order they ran.
    pub tasks: Vec<String>,
    /// Why processing stopped.
    pub stopped_by: StopReason,
    /// The error that ended the invocation, if any.
    pub error: Option<String>,
    /// What a retry can do about that error ([`FaultKind`]: `invalid` for malformed input).
    pub error_kind: Option<FaultKind>,
    /// True when retrying the event may succeed: `error_kind` is `transient`.
    pub retryable: bool,
    /// Errors that were reported and handled (ignored, or leading into `failure`).
    pub errors: Vec<ReportedError>,
    /// For `not_supported`: what was seen.
    pub not_supported: Option<String>,
    /// For `conflict`: the status another invocation had written.
    pub conflict: Option<String>,
    /// For `duplicate`: how the first processing of the event ended (`stopped_by`, and the
    /// state it ended in).
    pub duplicate: Option<String>,
    /// Tolerated problems (e.g. metadata that is not JSON).
    pub warnings: Vec<String>,
    /// AWS calls made (or, in a simulation, that would have been made), secrets masked.
    pub calls: Vec<Call>,
    /// How long loading waited (for cloud-init, or for a command record), in milliseconds.
    pub waited_ms: u64,
    /// The node's deliveries in a row that ended with a transient fault, this one included
    /// (SPEC 9); 0 when this one got further.
    pub transient_attempts: u32,
}

impl Report {
    /// A report of an invocation that ended with `error`, of `kind`.
    pub fn failed(error: impl std::fmt::Display, kind: FaultKind) -> Self {
        let mut r = Report::stopped(StopReason::Error);
        r.fail(error, kind);
        r
    }

    /// Marks this report as ended by `error`, of `kind`.
    pub fn fail(&mut self, error: impl std::fmt::Display, kind: FaultKind) {
        self.stopped_by = StopReason::Error;
        self.error = Some(error.to_string());
        self.error_kind = Some(kind);
        self.retryable = kind.is_transient();
    }

    /// An empty report that stopped for `reason`.
    pub fn stopped(reason: StopReason) -> Self {
        Report {
            event: None,
            event_id: None,
            node: None,
            initial_state: String::new(),
            final_state: String::new(),
            passed_states: Vec::new(),
            tasks: Vec::new(),
            stopped_by: reason,
            error: None,
            error_kind: None,
            retryable: false,
            errors: Vec::new(),
            not_supported: None,
            conflict: None,
            duplicate: None,
            warnings: Vec::new(),
            calls: Vec::new(),
            waited_ms: 0,
            transient_attempts: 0,
        }
    }
}
