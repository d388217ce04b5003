//! `bootstrap`: the Lambda function. Everything is built once at init; each invocation only
//! adapts the payload and the answer (see the `lifecycle_lambda` crate).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use lifecycle_lambda::{Function, InitError, Response, Settings, metrics};
use serde_json::Value;
use tracing::Instrument;

/// One JSON line per log event, with the fields of the spans around it (the request id, the
/// event's name and id); `RUST_LOG` sets the level (default `info`).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .without_time()
        .init();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_logging();
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("."));
    let function = match Settings::from_env(|k| std::env::var(k).ok(), beside) {
        Ok(settings) => Function::init(settings).await,
        Err(errors) => Err(InitError::Settings(errors)),
    };
    let function = match function {
        Ok(f) => f,
        Err(e) => {
            // Every problem, in the log; the init fails, so no event meets it. (Returning the
            // error would print it again, as Debug.)
            tracing::error!(error = %e, "init failed");
            std::process::exit(1);
        }
    };
    tracing::info!(
        config = %function.settings().config.display(),
        table = %function.settings().table,
        "ready"
    );
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
        handle(function, event).instrument(span).await
    }))
    .await
}

/// One invocation: the records, their log lines and metrics, and Lambda's answer.
async fn handle(function: &Function, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let invocation = function
        .invoke(&event.payload, event.context.deadline())
        .await;
    let name = &function.settings().function_name;
    for ((report, id), took) in invocation
        .reports
        .iter()
        .zip(&invocation.message_ids)
        .zip(&invocation.durations)
    {
        tracing::info!(
            event = report.event.as_deref().unwrap_or(""),
            event_id = report.event_id.as_deref().unwrap_or(""),
            message_id = id.as_deref().unwrap_or(""),
            instance = report.node.as_deref().unwrap_or(""),
            initial_state = %report.initial_state,
            state = %report.final_state,
            stopped_by = %report.stopped_by,
            retryable = report.retryable,
            error = report.error.as_deref().unwrap_or(""),
            "record processed"
        );
        // Embedded Metric Format: a raw JSON line on stdout, read by CloudWatch Logs.
        println!(
            "{}",
            metrics::document(report, name, *took, SystemTime::now())
        );
    }
    let states = function.states();
    for (i, sweep) in &invocation.sweeps {
        match serde_json::to_value(sweep) {
            Ok(report) => tracing::info!(record = i, sweep = %report, "sweep report"),
            Err(e) => tracing::warn!(error = %e, "sweep report could not be written"),
        }
        for doc in metrics::sweep_documents(sweep, &states, name, SystemTime::now()) {
            println!("{doc}");
        }
    }
    match invocation.response {
        Response::Sqs(batch) => Ok(serde_json::to_value(batch)?),
        Response::Done(summary) => Ok(summary),
        Response::Retry(why) => Err(why.into()),
    }
}
