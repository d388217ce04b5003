//! What the CLI prints for reports, and its exit codes (SPEC 7).

use lifecycle::FaultKind;
use lifecycle_runtime::Report;

use crate::OutputFormat;

/// The exit code of one report: 0 processed (failure handling included), not supported, a
/// duplicate delivery or lost a race; 2 invalid input (the event, the configuration, a table item, a flag); 1 any
/// other error. The one place exit codes are decided.
pub(crate) fn exit_code(r: &Report) -> u8 {
    match r.error_kind {
        None => 0,
        Some(FaultKind::Invalid) => 2,
        Some(_) => 1,
    }
}

/// A report for input that could not be processed at all (exit 2).
pub(crate) fn invalid_report(message: String) -> Report {
    Report::failed(message, FaultKind::Invalid)
}

/// One human-readable paragraph.
fn to_text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    if let Some(e) = &r.event {
        let _ = write!(s, "event: {e}");
        if let Some(n) = &r.node {
            let _ = write!(s, " (node {n})");
        }
        s.push('\n');
    }
    if let Some(reason) = &r.not_supported {
        let _ = writeln!(s, "not supported: {reason}");
    }
    if let Some(outcome) = &r.duplicate {
        let _ = writeln!(s, "duplicate: already processed ({outcome})");
    }
    if !r.initial_state.is_empty() {
        let mut path = vec![r.initial_state.as_str()];
        path.extend(r.passed_states.iter().map(String::as_str));
        let _ = writeln!(s, "states: {}", path.join(" -> "));
    }
    if !r.tasks.is_empty() {
        let _ = writeln!(s, "ran: {}", r.tasks.join(", "));
    }
    for e in &r.errors {
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
    for c in &r.calls {
        let _ = writeln!(s, "call: {}:{} {}", c.service, c.operation, c.input);
    }
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = write!(s, "stopped by: {}", r.stopped_by);
    if let Some(found) = &r.conflict {
        let _ = write!(s, " (another invocation moved the node to {found})");
    }
    if let Some(e) = &r.error {
        let _ = write!(s, "\nerror: {e}");
    }
    s.push('\n');
    s
}

/// Prints the reports: one JSON object (an array for a batch), or text.
pub(crate) fn print(reports: &[Report], batch: bool, format: OutputFormat) {
    match format {
        OutputFormat::Json => {
            let out = if batch {
                serde_json::to_string_pretty(reports)
            } else {
                match reports.first() {
                    Some(r) => serde_json::to_string_pretty(r),
                    None => serde_json::to_string_pretty(reports),
                }
            };
            match out {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("cannot encode the report: {e}"),
            }
        }
        OutputFormat::Text => {
            for (i, r) in reports.iter().enumerate() {
                if batch {
                    println!("record {}:", i + 1);
                }
                print!("{}", to_text(r));
            }
        }
    }
}

/// Prints the reports and returns the exit code: the highest of theirs (SPEC 7).
pub(crate) fn finish(reports: &[Report], batch: bool, format: OutputFormat) -> u8 {
    print(reports, batch, format);
    reports.iter().map(exit_code).max().unwrap_or(0)
}
