//! `lifecycle simulate`: one event through the real dispatcher on the embedded local store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifecycle::config::{ConditionKind, TaskKind};
use lifecycle::event;
use lifecycle::node::{ATTR_TYPE, TYPE_COMMAND};
use lifecycle::{CommandRecord, Deadline, Node};
use lifecycle_embedded::simulated::{Outcome, stand_ins};
use lifecycle_embedded::{FileItems, LocalStore, ManualClock, Recorder};
use lifecycle_runtime::{Dispatcher, Options};
use serde_json::{Map, Value};

use crate::OutputFormat;
use crate::output::{finish, invalid_report, print};

/// Flags of `lifecycle simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    input: crate::EventArgs,
    /// Nodes to put in the store first: a JSON item (`Ident`, `ItemStatus`, ...) or an array.
    #[arg(long, value_name = "FILE")]
    nodes: Option<PathBuf>,
    /// Command records to put in the store first: a JSON item or an array.
    #[arg(long, value_name = "FILE")]
    commands: Option<PathBuf>,
    /// How a task or condition that is not built in behaves: NAME=ok|error for a task,
    /// NAME=true|false|error for a condition. Repeatable. Default: ok / true.
    #[arg(long, value_name = "NAME=OUTCOME")]
    outcome: Vec<String>,
    /// Keep the state in this file (redb) instead of memory, so that a later run resumes where
    /// this one stopped — as a later invocation does on AWS.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// How long a launching or command event waits for a new node to reach the initial state,
    /// in simulated seconds (nothing changes the store meanwhile, so a wait ends in a timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_timeout: u64,
}

/// Bad input to the simulation: exit 2.
struct Invalid(String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

fn read_json(path: &PathBuf, what: &str) -> Result<Value, Invalid> {
    let text = std::fs::read(path)
        .map_err(|e| invalid(format!("cannot read {what} {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| invalid(format!("{what} {} is not JSON: {e}", path.display())))
}

fn items(path: &PathBuf, what: &str) -> Result<Vec<Map<String, Value>>, Invalid> {
    let list = match read_json(path, what)? {
        Value::Array(a) => a,
        other => vec![other],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            other => Err(invalid(format!(
                "{what} {} [{i}]: an item is a JSON object, not {other}",
                path.display()
            ))),
        })
        .collect()
}

fn parse_outcomes(flags: &[String]) -> Result<BTreeMap<String, Outcome>, Invalid> {
    let mut out = BTreeMap::new();
    for f in flags {
        let Some((name, value)) = f.split_once('=') else {
            return Err(invalid(format!(
                "--outcome {f:?}: expected NAME=ok|error|true|false"
            )));
        };
        let outcome = Outcome::parse(value).ok_or_else(|| {
            invalid(format!(
                "--outcome {f:?}: outcome must be ok, error, true or false"
            ))
        })?;
        if name.is_empty() {
            return Err(invalid(format!("--outcome {f:?}: the name is empty")));
        }
        out.insert(name.to_owned(), outcome);
    }
    Ok(out)
}

struct Setup {
    dispatcher: Dispatcher,
    recorder: Recorder,
    input: Vec<u8>,
}

fn setup(args: &Args) -> Result<Setup, Invalid> {
    let def = crate::load_definition(&args.input.config).map_err(Invalid)?;
    let outcomes = parse_outcomes(&args.outcome)?;
    for (name, outcome) in &outcomes {
        let as_task = def.tasks().find(|(_, n, _)| n == name).map(|(_, _, k)| k);
        let as_condition = def
            .conditions()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, k)| k);
        let external = matches!(as_task, Some(TaskKind::External))
            || matches!(as_condition, Some(ConditionKind::External));
        if (as_task.is_some() || as_condition.is_some()) && !external {
            return Err(invalid(format!(
                "--outcome {name}: `{name}` is built in or declared; only other names can be simulated"
            )));
        }
        if as_task.is_none() && as_condition.is_none() {
            return Err(invalid(format!(
                "--outcome {name}: the configuration uses no task or condition named `{name}`"
            )));
        }
        if as_task.is_some() && !outcome.fits_task() {
            return Err(invalid(format!(
                "--outcome {name}: `{name}` is a task; its outcome is ok or error"
            )));
        }
        if as_condition.is_some() && !outcome.fits_condition() {
            return Err(invalid(format!(
                "--outcome {name}: `{name}` is a condition; its outcome is true, false or error"
            )));
        }
    }
    let registry = stand_ins(&def, |n| outcomes.get(n).copied());

    let store = match &args.store {
        Some(path) => LocalStore::new(FileItems::open(path).map_err(|e| invalid(e.to_string()))?),
        None => LocalStore::memory(),
    };
    if let Some(path) = &args.nodes {
        for item in items(path, "nodes file")? {
            Node::from_item(item.clone())
                .map_err(|e| invalid(format!("nodes file {}: {e}", path.display())))?;
            store
                .insert_item(item)
                .map_err(|e| invalid(e.to_string()))?;
        }
    }
    if let Some(path) = &args.commands {
        for mut item in items(path, "commands file")? {
            item.entry(ATTR_TYPE)
                .or_insert_with(|| Value::String(TYPE_COMMAND.into()));
            CommandRecord::from_item(&item)
                .map_err(|e| invalid(format!("commands file {}: {e}", path.display())))?;
            store
                .insert_item(item)
                .map_err(|e| invalid(e.to_string()))?;
        }
    }
    let input = std::fs::read(&args.input.event).map_err(|e| {
        invalid(format!(
            "cannot read event {}: {e}",
            args.input.event.display()
        ))
    })?;

    let recorder = Recorder::default();
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let services = lifecycle_embedded::services(store, recorder.clone(), clock);
    let mut options = Options::default();
    options.wait_timeout = Duration::from_secs(args.wait_timeout);
    // Nothing else writes to the local store while a simulation runs.
    options.record_wait = Duration::ZERO;
    let dispatcher = Dispatcher::new(Arc::new(def), &registry, services, options)
        .map_err(|e| invalid(format!("{}: {e}", args.input.config.display())))?;
    Ok(Setup {
        dispatcher,
        recorder,
        input,
    })
}

/// Runs `lifecycle simulate`; returns the exit code.
pub fn run(args: Args) -> u8 {
    let setup = match setup(&args) {
        Ok(s) => s,
        Err(Invalid(msg)) => {
            eprintln!("error: {msg}");
            if args.input.format == OutputFormat::Json {
                print(&[invalid_report(msg)], false, args.input.format);
            }
            return 2;
        }
    };
    let records = match event::parse(&setup.input) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("{}: {e}", args.input.event.display());
            eprintln!("error: {msg}");
            print(&[invalid_report(msg)], false, args.input.format);
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let batch = records.len() > 1;
    let mut reports = Vec::with_capacity(records.len());
    let mut seen_calls = 0;
    for record in records {
        let mut report = runtime.block_on(setup.dispatcher.dispatch(record, Deadline::NONE));
        let calls = setup.recorder.calls();
        report.calls = calls.get(seen_calls..).unwrap_or_default().to_vec();
        seen_calls = calls.len();
        reports.push(report);
    }
    finish(&reports, batch, args.input.format)
}
