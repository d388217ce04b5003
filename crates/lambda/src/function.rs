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
use lifecycle::event::parse_value;
use lifecycle::{ConfigErrors, Deadline, Definition, FaultKind};
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
    /// The answer for Lambda.
    pub response: Response,
}

/// The function: the configuration compiled once, the clients built once.
#[derive(Debug, Clone)]
pub struct Function {
    dispatcher: Arc<Dispatcher>,
    settings: Settings,
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
        let services = lifecycle_aws::load_services(&settings.table, &options).await;
        Self::new(def, services, settings)
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
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
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
            response,
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
