//! The result of processing one event: what `lifecycle simulate --format json` prints and what
//! the Lambda logs (SPEC 7).

use serde::Serialize;

use crate::engine::{ReportedError, StopReason};
use crate::services::Call;

/// How an invocation that ended with an error should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The event, the configuration or a table item is malformed: retrying cannot help
    /// (exit code 2).
    InvalidInput,
    /// Processing failed (exit code 1); [`Report::retryable`] says whether a retry can help.
    Invocation,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The class of that error.
    pub error_class: Option<ErrorClass>,
    /// True when retrying the event may succeed (an error a retry can fix).
    pub retryable: bool,
    /// Errors that were reported and handled (ignored, or leading into `failure`).
    pub errors: Vec<ReportedError>,
    /// For `not_supported`: what was seen.
    pub not_supported: Option<String>,
    /// For `conflict`: the status another invocation had written.
    pub conflict: Option<String>,
    /// Tolerated problems (e.g. metadata that is not JSON).
    pub warnings: Vec<String>,
    /// AWS calls made (or, in a simulation, that would have been made), secrets masked.
    pub calls: Vec<Call>,
}

impl Report {
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
            error_class: None,
            retryable: false,
            errors: Vec::new(),
            not_supported: None,
            conflict: None,
            warnings: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// The CLI exit code (SPEC 7): 0 processed (failure handling included), not supported or
    /// lost a race; 1 the invocation ended with an error; 2 invalid input.
    pub fn exit_code(&self) -> i32 {
        match self.error_class {
            None => 0,
            Some(ErrorClass::Invocation) => 1,
            Some(ErrorClass::InvalidInput) => 2,
        }
    }

    /// One human-readable paragraph.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        if let Some(e) = &self.event {
            let _ = write!(s, "event: {e}");
            if let Some(n) = &self.node {
                let _ = write!(s, " (node {n})");
            }
            s.push('\n');
        }
        if let Some(reason) = &self.not_supported {
            let _ = writeln!(s, "not supported: {reason}");
        }
        if !self.initial_state.is_empty() {
            let mut path = vec![self.initial_state.as_str()];
            path.extend(self.passed_states.iter().map(String::as_str));
            let _ = writeln!(s, "states: {}", path.join(" -> "));
        }
        if !self.tasks.is_empty() {
            let _ = writeln!(s, "ran: {}", self.tasks.join(", "));
        }
        for e in &self.errors {
            let what = if e.ignored { "ignored" } else { "failed" };
            let _ = writeln!(
                s,
                "{what}: trigger {}{}: {}",
                e.trigger,
                e.task
                    .as_deref()
                    .map(|t| format!(", {t}"))
                    .unwrap_or_default(),
                e.message
            );
        }
        for c in &self.calls {
            let _ = writeln!(s, "call: {}:{} {}", c.service, c.operation, c.input);
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        let _ = write!(s, "stopped by: {}", self.stopped_by);
        if let Some(found) = &self.conflict {
            let _ = write!(s, " (another invocation moved the node to {found})");
        }
        if let Some(e) = &self.error {
            let _ = write!(s, "\nerror: {e}");
        }
        s.push('\n');
        s
    }
}
