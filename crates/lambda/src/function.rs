//! One invocation: a payload in, one report per record, and the answer Lambda expects.
//!
//! The payload is whatever the trigger delivers — an EventBridge event (asynchronous
//! invocation), an SNS event, an SQS batch — and goes through the same parser as the CLI.
//! Each record gets its share of the time left before the deadline. The answer follows
//! SPEC 8: for SQS, a partial batch response naming exactly the records that ended with a
//! retryable error; otherwise the invocation fails only when a record can be mended by a
//! retry, so Lambda retries it and then hands it to the on-failure destination.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use lifecycle::event::{Parsed, parse_value};
use lifecycle::{ConfigErrors, Deadline, Definition, FaultKind, StopReason};
use lifecycle_runtime::sweep::{SweepReport, TableItems};
use lifecycle_runtime::{Dispatcher, Options, Registry, Report, Services};
use serde_json::{Value, json};

use crate::settings::{SettingError, Settings};

/// Why the function could not start. Every problem is listed: an operator fixes them in one
/// deployment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The environment is wrong.
    #[error("the function's environment is wrong:{}", list(.0))]
    Settings(Vec<SettingError>),
    /// The configuration file cannot be read.
    #[error("cannot read the configuration {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is invalid, or names a task nothing provides.
    #[error("{}: {errors}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Every problem.
        errors: ConfigErrors,
    },
}

fn list(errors: &[SettingError]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}

/// What Lambda gets back.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// An SQS batch: the records to deliver again (an empty list: all done).
    Sqs(SqsBatchResponse),
    /// Done: a summary of the records.
    Done(Value),
    /// Fail the invocation: a record can be mended by a retry (asynchronous invocation).
    Retry(String),
}

/// One invocation's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// One report per record, in order.
    pub reports: Vec<Report>,
    /// The SQS message id of each record, when the payload is an SQS batch.
    pub message_ids: Vec<Option<String>>,
    /// How long each record took.
    pub durations: Vec<Duration>,
    /// The reconciliation sweeps run (a scheduled event of the `reconcile:` rule), each
    /// with the index of its record.
    pub sweeps: Vec<(usize, SweepReport)>,
    /// The answer for Lambda.
    pub response: Response,
}

/// The function: the configuration compiled once, the clients built once.
#[derive(Clone)]
pub struct Function {
    dispatcher: Arc<Dispatcher>,
    settings: Settings,
    table: Option<Arc<dyn TableItems>>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("dispatcher", &self.dispatcher)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Reads and compiles the configuration, builds the SDK configuration and every client,
    /// and binds the definition (SPEC 8, init).
    ///
    /// # Errors
    /// The configuration cannot be read, is invalid, or names a task that is neither built in
    /// nor declared (the function registers none of its own).
    pub async fn init(settings: Settings) -> Result<Self, InitError> {
        let def = load_definition(&settings.config)?;
        let timeouts = lifecycle_aws::Timeouts::new(
            settings.operation_timeout,
            settings.attempt_timeout,
            settings.command_timeout,
        );
        let options = lifecycle_aws::Options::new(timeouts, settings.command_log_group.clone());
        let config = lifecycle_aws::load_config(&options.timeouts).await;
        let services = lifecycle_aws::services_with(&config, &settings.table, &options);
        let table = lifecycle_aws::DynamoStore::new(&config, &settings.table);
        Ok(Self::new(def, services, settings)?.with_table(Arc::new(table)))
    }

    /// A function over `services` (the AWS ones in `bootstrap`; tests may bring others).
    ///
    /// # Errors
    /// A name in `def` that is neither built in nor declared.
    pub fn new(def: Definition, services: Services, settings: Settings) -> Result<Self, InitError> {
        let mut options = Options::default();
        options.wait_timeout = settings.wait_timeout;
        options.default_metadata = settings.default_metadata.clone();
        options.max_transient_attempts = settings.max_transient_attempts;
        options.remember = settings.remember;
        options.busy_wait = settings.busy_wait;
        let dispatcher = Dispatcher::new(Arc::new(def), &Registry::new(), services, options)
            .map_err(|errors| InitError::Config {
                path: settings.config.clone(),
                errors,
            })?;
        Ok(Function {
            dispatcher: Arc::new(dispatcher),
            settings,
            table: None,
        })
    }

    /// The table the reconciliation sweep reads (`bootstrap`: the DynamoDB table, with a
    /// `Scan`). Without one, a sweep's scheduled event ends with an error saying so.
    #[must_use]
    pub fn with_table(mut self, table: Arc<dyn TableItems>) -> Self {
        self.table = Some(table);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The configuration's states, in order (`failure` included).
    pub fn states(&self) -> Vec<String> {
        self.dispatcher.definition().states().to_vec()
    }

    /// Processes one payload whose invocation must end by `deadline` (the invocation's own,
    /// before the margin is taken off).
    pub async fn invoke(&self, payload: &Value, deadline: SystemTime) -> Invocation {
        let clock = &self.dispatcher.services().clock;
        let end = deadline
            .checked_sub(self.settings.deadline_margin)
            .unwrap_or(deadline);
        let records = parse_value(payload);
        let message_ids = sqs_message_ids(payload, records.len());
        let mut reports = Vec::with_capacity(records.len());
        let mut durations = Vec::with_capacity(records.len());
        let mut sweeps = Vec::new();
        let count = records.len();
        for (i, record) in records.into_iter().enumerate() {
            let started = clock.now();
            // Each record's share of what is left, so one slow record cannot starve the rest
            // of a batch (left-over time passes on to the next).
            let left = end.duration_since(started).unwrap_or_default();
            let share = left / u32::try_from(count - i).unwrap_or(u32::MAX);
            let report = if left.is_zero() {
                let mut r = Report::failed(
                    "the deadline came before this record was started",
                    FaultKind::Transient,
                );
                r.stopped_by = lifecycle::StopReason::Deadline;
                r
            } else if self.is_sweep(&record) {
                let (r, sweep) = self.sweep(Deadline::at(started + share)).await;
                sweeps.extend(sweep.map(|s| (i, s)));
                r
            } else {
                let mut r = self
                    .dispatcher
                    .dispatch(record, Deadline::at(started + share))
                    .await;
                if r.error_kind == Some(FaultKind::Invalid) {
                    tracing::error!(event_id = ?r.event_id, error = ?r.error, "invalid input: dropped");
                }
                r.event_id = r.event_id.or_else(|| message_ids[i].clone());
                r
            };
            durations.push(clock.now().duration_since(started).unwrap_or_default());
            reports.push(report);
        }
        let response = respond(&reports, &message_ids);
        Invocation {
            reports,
            message_ids,
            durations,
            sweeps,
            response,
        }
    }

    /// True for a scheduled event of the configuration's `reconcile:` rule.
    fn is_sweep(&self, record: &Result<Parsed, lifecycle::EventError>) -> bool {
        let Some(spec) = self.dispatcher.definition().reconcile() else {
            return false;
        };
        matches!(record, Ok(Parsed::Event(e))
            if e.is_scheduled() && e.rule.as_deref().unwrap_or(&e.name) == spec.rule)
    }

    /// Runs the reconciliation sweep: the record's report (never retryable: the next sweep
    /// comes on schedule, and sees what this one could not do; an error only when the sweep
    /// could not run at all) and the sweep's own.
    async fn sweep(&self, deadline: Deadline) -> (Report, Option<SweepReport>) {
        let rule = self
            .dispatcher
            .definition()
            .reconcile()
            .map(|s| s.rule.clone());
        let mut report = Report::stopped(StopReason::NoStateChange);
        report.event = rule;
        let Some(table) = &self.table else {
            report.fail(
                "the reconciliation sweep has no table to read (Function::with_table)",
                FaultKind::Permanent,
            );
            return (report, None);
        };
        let items = match table.items().await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "sweep: cannot read the state table; the next sweep tries again");
                report.fail(
                    format!("cannot read the state table: {e}"),
                    FaultKind::Permanent,
                );
                return (report, None);
            }
        };
        match lifecycle_runtime::sweep::sweep(&self.dispatcher, &items, deadline, false).await {
            // What failed inside is in the sweep's report and metrics; the next sweep retries.
            Ok(sweep) => (report, Some(sweep)),
            Err(e) => {
                report.fail(e.to_string(), FaultKind::Permanent);
                (report, None)
            }
        }
    }
}

/// Reads and compiles the configuration file.
///
/// # Errors
/// It cannot be read, or is invalid (every problem).
pub fn load_definition(path: &std::path::Path) -> Result<Definition, InitError> {
    let text = std::fs::read_to_string(path).map_err(|source| InitError::Read {
        path: path.to_owned(),
        source,
    })?;
    Definition::from_yaml(&text).map_err(|errors| InitError::Config {
        path: path.to_owned(),
        errors,
    })
}

/// The `messageId` of each record when the payload is an SQS batch (every record from
/// `aws:sqs`); `None`s otherwise.
fn sqs_message_ids(payload: &Value, count: usize) -> Vec<Option<String>> {
    let records = payload.get("Records").and_then(Value::as_array);
    let sqs = records.is_some_and(|rs| {
        !rs.is_empty()
            && rs
                .iter()
                .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    });
    (0..count)
        .map(|i| {
            sqs.then(|| {
                records
                    .and_then(|rs| rs.get(i))
                    .and_then(|r| r.get("messageId"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .flatten()
        })
        .collect()
}

/// The answer for Lambda (SPEC 8).
fn respond(reports: &[Report], message_ids: &[Option<String>]) -> Response {
    let is_sqs = message_ids.iter().any(Option::is_some);
    if is_sqs {
        let mut response = SqsBatchResponse::default();
        for (report, id) in reports.iter().zip(message_ids) {
            if let (true, Some(id)) = (report.retryable, id) {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                response.batch_item_failures.push(failure);
            }
        }
        return Response::Sqs(response);
    }
    let retry: Vec<String> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.retryable)
        .map(|(i, r)| format!("record {i}: {}", r.error.as_deref().unwrap_or("retryable")))
        .collect();
    if !retry.is_empty() {
        return Response::Retry(format!(
            "{} of {} records can be mended by a retry: {}",
            retry.len(),
            reports.len(),
            retry.join("; ")
        ));
    }
    Response::Done(json!({
        "records": reports.len(),
        "stopped_by": reports.iter().map(|r| r.stopped_by.as_str()).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(retryable: bool) -> Report {
        if retryable {
            Report::failed("throttled", FaultKind::Transient)
        } else {
            Report::stopped(lifecycle::StopReason::NoTrigger)
        }
    }

    #[test]
    fn sqs_batches_name_exactly_the_retryable_records() {
        let payload = json!({"Records": [
            {"eventSource": "aws:sqs", "messageId": "m-1", "body": "{}"},
            {"eventSource": "aws:sqs", "messageId": "m-2", "body": "{}"},
            {"eventSource": "aws:sqs", "messageId": "m-3", "body": "{}"},
        ]});
        let ids = sqs_message_ids(&payload, 3);
        let r = respond(&[report(false), report(true), report(false)], &ids);
        let Response::Sqs(batch) = r else {
            panic!("{r:?}")
        };
        let named: Vec<&str> = batch
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(named, ["m-2"]);
        assert_eq!(
            serde_json::to_value(&batch).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]})
        );
    }

    #[test]
    fn asynchronous_invocations_fail_only_for_retryable_records() {
        let payload = json!({"source": "aws.autoscaling"});
        let ids = sqs_message_ids(&payload, 1);
        assert_eq!(ids, [None]);
        assert!(matches!(respond(&[report(false)], &ids), Response::Done(_)));
        match respond(&[report(true)], &ids) {
            Response::Retry(msg) => assert!(msg.contains("throttled"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // SNS envelopes are asynchronous invocations too.
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {}}]});
        assert_eq!(sqs_message_ids(&sns, 1), [None]);
    }
}
