//! `lifecycle reconcile`: one reconciliation sweep (issue 12) from the shell — the table
//! compared with Auto Scaling, what it found and what it did (or, with `--dry-run`, would
//! do), as one report. On DynamoDB (`--table`) with the AWS environment's credentials; on an
//! embedded store file (`--store`) with the groups' instances and hooks from a file
//! (`--instances`), to rehearse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifecycle::Deadline;
use lifecycle::event::{LifecycleResult, LifecycleTransition, decode_metadata};
use lifecycle::reconcile::{Hook, Instance};
use lifecycle_embedded::{FileItems, LocalStore, ManualClock, Recorder};
use lifecycle_runtime::sweep::{Outcome, SweepReport, sweep};
use lifecycle_runtime::{Call, Dispatcher, Options, Registry};
use serde::Serialize;
use serde_json::Value;

use crate::OutputFormat;

/// Flags of `lifecycle reconcile`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["table", "store"])))]
pub struct Args {
    /// The configuration file, with its `reconcile:` section.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The DynamoDB state table (read with a Scan: the caller needs `dynamodb:Scan`).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// An embedded store file (as `simulate --store` keeps), to rehearse; needs --instances.
    #[arg(long, value_name = "FILE", requires = "instances")]
    store: Option<PathBuf>,
    /// With --store: the groups' instances and hooks, as `aws autoscaling
    /// describe-auto-scaling-groups` and `describe-lifecycle-hooks` print them, merged into one
    /// JSON object (`AutoScalingGroups`, `LifecycleHooks`).
    #[arg(long, value_name = "FILE", requires = "store")]
    instances: Option<PathBuf>,
    /// Perform nothing: report what the sweep would do.
    #[arg(long)]
    dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// What `reconcile` prints: the sweep's report and, on a store, the AWS calls it made.
#[derive(Debug, Serialize)]
struct Printed<'a> {
    #[serde(flatten)]
    sweep: &'a SweepReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    calls: Vec<Call>,
}

/// Runs `lifecycle reconcile`; returns the exit code: 0 the sweep ran and everything it did
/// succeeded, 1 an action or a read failed (or the table could not be read), 2 invalid input.
pub fn run(args: Args) -> u8 {
    let fail = |msg: String, code: u8| {
        eprintln!("error: {msg}");
        code
    };
    let def = match crate::load_definition(&args.config) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(e, 2),
    };
    if def.reconcile().is_none() {
        return fail(
            format!(
                "{}: {}",
                args.config.display(),
                lifecycle_runtime::sweep::SweepError::NotConfigured
            ),
            2,
        );
    }
    let fleet = match &args.instances {
        Some(path) => match read_fleet(path) {
            Ok(f) => Some(f),
            Err(e) => return fail(e, 2),
        },
        None => None,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}"), 1),
    };
    let result = rt.block_on(async {
        let (services, items, recorder) = match (&args.table, &args.store) {
            (Some(table), _) => {
                let options = lifecycle_aws::Options::default();
                let config = lifecycle_aws::load_config(&options.timeouts).await;
                let items = lifecycle_aws::DynamoStore::new(&config, table)
                    .items()
                    .await
                    .map_err(|e| (format!("cannot read table {table}: {e}"), 1))?;
                (
                    lifecycle_aws::services_with(&config, table, &options),
                    items,
                    None,
                )
            }
            (None, Some(path)) => {
                let store = LocalStore::new(
                    FileItems::open(path).map_err(|e| (format!("{}: {e}", path.display()), 2))?,
                );
                let items = store.items().map_err(|e| (e.to_string(), 1))?;
                let recorder = Recorder::default();
                for (group, (instances, hooks)) in fleet.unwrap_or_default() {
                    recorder.script_group(&group, instances, hooks);
                }
                let services = lifecycle_embedded::services(
                    store,
                    recorder.clone(),
                    Arc::new(ManualClock::at(SystemTime::now())),
                );
                (services, items, Some(recorder))
            }
            (None, None) => return Err(("--table or --store is required".to_owned(), 2)),
        };
        let dispatcher =
            Dispatcher::new(def.clone(), &Registry::new(), services, Options::default())
                .map_err(|e| (e.to_string(), 2))?;
        let report = sweep(&dispatcher, &items, Deadline::NONE, args.dry_run)
            .await
            .map_err(|e| (e.to_string(), 2))?;
        Ok((report, recorder.map(|r| r.calls()).unwrap_or_default()))
    });
    let (report, calls) = match result {
        Ok(r) => r,
        Err((e, code)) => return fail(e, code),
    };
    match args.format {
        OutputFormat::Json => match serde_json::to_string(&Printed {
            sweep: &report,
            calls,
        }) {
            Ok(json) => println!("{json}"),
            Err(e) => return fail(e.to_string(), 1),
        },
        OutputFormat::Text => print!("{}", text(&report, &calls)),
    }
    u8::from(report.failures() > 0 || !report.errors.is_empty())
}

/// The report as a table.
pub(crate) fn text(r: &SweepReport, calls: &[Call]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sweep {} at {}{}: groups {}; {} instance(s)",
        r.sweep,
        r.at,
        if r.dry_run {
            " (dry run: nothing done)"
        } else {
            ""
        },
        r.groups.join(", "),
        r.instances
    );
    let _ = writeln!(s, "{:<22} {:>5} {:>5}", "STATE", "NODES", "STUCK");
    for (state, c) in &r.states {
        let _ = writeln!(s, "{:<22} {:>5} {:>5}", state, c.nodes, c.stuck);
    }
    if r.findings.is_empty() {
        let _ = writeln!(s, "nothing to report");
    } else {
        let _ = writeln!(
            s,
            "{:<21} {:<20} {:<18} {:<12} {:<14} WHY",
            "NODE", "STATE", "INSTANCE", "ACTION", "OUTCOME"
        );
    }
    for e in &r.findings {
        let (label, detail) = match &e.outcome {
            Outcome::Listed => ("listed", String::new()),
            Outcome::WouldDo => ("would-do", String::new()),
            Outcome::Done { detail } => ("done", detail.clone()),
            Outcome::NoActiveAction => ("no-action", "AWS has no active lifecycle action".into()),
            Outcome::Skipped { why } => ("skipped", why.clone()),
            Outcome::Resumed {
                stopped_by,
                initial_state,
                final_state,
                error,
                ..
            } => (
                if error.is_some() {
                    "resume-failed"
                } else {
                    "resumed"
                },
                format!(
                    "{initial_state} -> {final_state}, stopped by {stopped_by}{}",
                    error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            ),
            Outcome::Failed { error, .. } => ("failed", error.clone()),
            Outcome::NotReached => ("not-reached", "the deadline came first".into()),
        };
        let _ = writeln!(
            s,
            "{:<21} {:<20} {:<18} {:<12} {:<14} {}{}",
            e.finding.node,
            e.finding.state.as_deref().unwrap_or("-"),
            e.finding.instance_state.as_deref().unwrap_or("-"),
            e.finding.action.name(),
            label,
            e.why,
            if detail.is_empty() {
                String::new()
            } else {
                format!(" — {detail}")
            }
        );
    }
    for e in &r.errors {
        let _ = writeln!(s, "error: {e}");
    }
    for c in calls {
        let _ = writeln!(s, "call: {}:{} {}", c.service, c.operation, c.input);
    }
    s
}

/// The groups' instances and hooks, by group.
pub(crate) type Fleet = BTreeMap<String, (Vec<Instance>, Vec<Hook>)>;

/// Reads an `--instances` file: a JSON object with `AutoScalingGroups` (each with
/// `AutoScalingGroupName` and `Instances`: `InstanceId`, `LifecycleState`) and
/// `LifecycleHooks` (`AutoScalingGroupName`, `LifecycleHookName`, `LifecycleTransition`,
/// `HeartbeatTimeout`, `DefaultResult`, `NotificationMetadata`), as the AWS CLI prints them.
///
/// # Errors
/// A message naming the file and the field that is wrong.
pub(crate) fn read_fleet(path: &Path) -> Result<Fleet, String> {
    let at = |field: String, what: &str| format!("{}: `{field}` {what}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let Value::Object(doc) = doc else {
        return Err(format!(
            "{}: must be a JSON object with `AutoScalingGroups` and `LifecycleHooks`",
            path.display()
        ));
    };
    let list = |key: &str| -> Result<Vec<Value>, String> {
        match doc.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(at(key.to_owned(), "must be a list")),
        }
    };
    let text_of = |v: &Value, field: String| -> Result<String, String> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| at(field, "must be a non-empty string"))
    };
    let mut fleet = Fleet::new();
    for (i, g) in list("AutoScalingGroups")?.iter().enumerate() {
        let name = text_of(
            &g["AutoScalingGroupName"],
            format!("AutoScalingGroups[{i}].AutoScalingGroupName"),
        )?;
        let instances = match &g["Instances"] {
            Value::Null => Vec::new(),
            Value::Array(a) => a.clone(),
            _ => {
                return Err(at(
                    format!("AutoScalingGroups[{i}].Instances"),
                    "must be a list",
                ));
            }
        };
        let entry = fleet.entry(name.clone()).or_default();
        for (j, inst) in instances.iter().enumerate() {
            let field = |f: &str| format!("AutoScalingGroups[{i}].Instances[{j}].{f}");
            entry.0.push(Instance {
                id: text_of(&inst["InstanceId"], field("InstanceId"))?,
                group: name.clone(),
                lifecycle_state: text_of(&inst["LifecycleState"], field("LifecycleState"))?,
            });
        }
    }
    for (i, h) in list("LifecycleHooks")?.iter().enumerate() {
        let field = |f: &str| format!("LifecycleHooks[{i}].{f}");
        let group = text_of(&h["AutoScalingGroupName"], field("AutoScalingGroupName"))?;
        let transition = LifecycleTransition::parse(&text_of(
            &h["LifecycleTransition"],
            field("LifecycleTransition"),
        )?)
        .ok_or_else(|| {
            at(
                field("LifecycleTransition"),
                "must be autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING",
            )
        })?;
        let heartbeat_timeout = match &h["HeartbeatTimeout"] {
            Value::Null => None,
            v => Some(Duration::from_secs(v.as_u64().ok_or_else(|| {
                at(
                    field("HeartbeatTimeout"),
                    "must be a whole number of seconds",
                )
            })?)),
        };
        let default_result = match h["DefaultResult"].as_str() {
            None | Some("ABANDON") => LifecycleResult::Abandon,
            Some("CONTINUE") => LifecycleResult::Continue,
            Some(_) => return Err(at(field("DefaultResult"), "must be CONTINUE or ABANDON")),
        };
        let hook = Hook {
            name: text_of(&h["LifecycleHookName"], field("LifecycleHookName"))?,
            group: group.clone(),
            transition,
            heartbeat_timeout,
            default_result,
            metadata: decode_metadata(&h["NotificationMetadata"]).0,
        };
        fleet.entry(group).or_default().1.push(hook);
    }
    Ok(fleet)
}
