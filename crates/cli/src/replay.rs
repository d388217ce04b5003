//! `lifecycle replay`: an operator runs an event again on purpose — one that was processed
//! already (its delivery record would make it a duplicate, SPEC 9), or one fished out of a
//! dead-letter queue — on DynamoDB (`--table`) or an embedded store file (`--store`). With
//! `--dry-run` it runs against a copy of the table on an in-memory store and prints the AWS
//! calls it would make. With `--node ID` instead of `--event`, the event is the lifecycle
//! event of the action the node's instance waits on (`Pending:Wait`, `Terminating:Wait`),
//! built as the reconciliation sweep builds it: the node is driven from its stored state as
//! a redelivery would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lifecycle::Deadline;
use lifecycle::delivery::{delivery_key, on_node};
use lifecycle::event::{self, EventError, Parsed};
use lifecycle_embedded::{FileItems, LocalStore, ManualClock, Recorder};
use lifecycle_runtime::{Dispatcher, Options, Registry, Report, Services};

use crate::output::{finish, invalid_report, print};

/// Flags of `lifecycle replay`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["table", "store"])))]
#[command(group(clap::ArgGroup::new("what").required(true).args(["event", "node"])))]
pub struct Args {
    /// The configuration file (YAML or JSON); every task and condition must be built in or
    /// declared in `tasks:`.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The event: an EventBridge event, or an SNS/SQS envelope of one or more records.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
    /// Instead of an event: drive this node from its stored state with the lifecycle event of
    /// the action its instance waits on, as a redelivery would.
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// With --node: the hook, when the group has several for the transition.
    #[arg(long, value_name = "NAME", requires = "node")]
    hook: Option<String>,
    /// With --node and --store: the groups' instances and hooks (as `lifecycle reconcile
    /// --instances` takes them).
    #[arg(long, value_name = "FILE", requires = "node", requires = "store")]
    instances: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::OutputFormat::Text)]
    format: crate::OutputFormat,
    /// The DynamoDB state table.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// An embedded store file (as `simulate --store` keeps), to rehearse.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Run against a copy of the table on an in-memory store (a `Scan` of DynamoDB), and
    /// print the AWS calls it would make; nothing is written, nothing is called.
    #[arg(long)]
    dry_run: bool,
    /// How long a launching or command event waits for a new node to reach the initial state.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait_timeout: u64,
}

/// The store the event is replayed on.
enum Source {
    Table(Box<(lifecycle_aws::DynamoStore, Services)>),
    File(LocalStore),
}

/// Runs `lifecycle replay`; returns the exit code (as `handle`'s).
pub fn run(args: Args) -> u8 {
    let format = args.format;
    let fail = |msg: String, code: u8| {
        eprintln!("error: {msg}");
        if format == crate::OutputFormat::Json {
            print(&[invalid_report(msg)], false, format);
        }
        code
    };
    let def = match crate::load_definition(&args.config) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(e, 2),
    };
    let from_file = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| format!("cannot read event {}: {e}", path.display()))
            .and_then(|bytes| event::parse(&bytes).map_err(|e| format!("{}: {e}", path.display())))
    };
    let records = match (&args.event, &args.node) {
        (Some(path), _) => match from_file(path) {
            Ok(r) => Some(r),
            Err(e) => return fail(e, 2),
        },
        // Built once the store is known (the instance's action is looked up there).
        (None, Some(_)) => None,
        (None, None) => return fail("--event or --node is required".to_owned(), 2),
    };
    let fleet = match &args.instances {
        Some(path) => match crate::reconcile::read_fleet(path) {
            Ok(f) => f,
            Err(e) => return fail(e, 2),
        },
        None => crate::reconcile::Fleet::new(),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}"), 1),
    };
    let batch = records.as_ref().is_some_and(|r| r.len() > 1);
    let reports = rt.block_on(async {
        let source = match (&args.table, &args.store) {
            (Some(table), _) => {
                let options = lifecycle_aws::Options::default();
                let config = lifecycle_aws::load_config(&options.timeouts).await;
                Source::Table(Box::new((
                    lifecycle_aws::DynamoStore::new(&config, table),
                    lifecycle_aws::services_with(&config, table, &options),
                )))
            }
            (None, Some(path)) => Source::File(LocalStore::new(
                FileItems::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
            )),
            (None, None) => return Err("--table or --store is required".to_owned()),
        };
        let records = match (records, &args.node) {
            (Some(records), _) => records,
            (None, Some(node)) => {
                let services = match &source {
                    Source::Table(table) => table.1.clone(),
                    Source::File(store) => {
                        let recorder = Recorder::default();
                        for (group, (instances, hooks)) in fleet {
                            recorder.script_group(&group, instances, hooks);
                        }
                        lifecycle_embedded::services(
                            store.clone(),
                            recorder,
                            Arc::new(ManualClock::at(SystemTime::now())),
                        )
                    }
                };
                let event = node_event(&services, node, args.hook.as_deref()).await?;
                vec![Ok(Parsed::Event(Box::new(event)))]
            }
            (None, None) => return Err("--event or --node is required".to_owned()),
        };
        let mut options = Options::default();
        options.wait_timeout = Duration::from_secs(args.wait_timeout);
        let mut reports = Vec::with_capacity(records.len());
        for record in records {
            reports.push(replay(&def, &source, options.clone(), record, args.dry_run).await?);
        }
        Ok(reports)
    });
    match reports {
        Ok(reports) => finish(&reports, batch, format),
        Err(e) => fail(e, 2),
    }
}

/// The lifecycle event that drives `node` from its stored state: its instance's group and
/// the hook of the transition it waits on, addressed by instance id, with an id of its own.
async fn node_event(
    services: &Services,
    node: &str,
    hook: Option<&str>,
) -> Result<lifecycle::Event, String> {
    let instance = services
        .lifecycle
        .instance(node)
        .await
        .map_err(|e| format!("cannot look up instance {node}: {e}"))?
        .ok_or_else(|| format!("instance {node} is in no Auto Scaling group: there is no lifecycle action to redeliver"))?;
    let transition = lifecycle::reconcile::waits_on(&instance.lifecycle_state).ok_or_else(|| {
        format!(
            "instance {node} is {}, not waiting on a lifecycle hook (Pending:Wait or Terminating:Wait): there is no lifecycle action to redeliver",
            instance.lifecycle_state
        )
    })?;
    let hooks: Vec<lifecycle::reconcile::Hook> = services
        .lifecycle
        .hooks(&instance.group)
        .await
        .map_err(|e| format!("cannot read the hooks of group {}: {e}", instance.group))?
        .into_iter()
        .filter(|h| h.transition == transition && hook.is_none_or(|n| h.name == n))
        .collect();
    let [h] = hooks.as_slice() else {
        let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
        return Err(format!(
            "group {} has {} hook(s) for {} ({}): name one with --hook",
            instance.group,
            names.len(),
            transition.as_str(),
            names.join(", ")
        ));
    };
    let of = lifecycle::reconcile::ActionRef {
        group: instance.group.clone(),
        hook: h.name.clone(),
        transition,
        metadata: h.metadata.clone(),
    };
    let id = format!(
        "replay-{}-{}",
        lifecycle::delivery::epoch_ms(SystemTime::now()),
        std::process::id()
    );
    Ok(lifecycle_runtime::sweep::lifecycle_event(&id, node, &of))
}

/// Replays one record.
async fn replay(
    def: &Arc<lifecycle::Definition>,
    source: &Source,
    options: Options,
    record: Result<Parsed, EventError>,
    dry_run: bool,
) -> Result<Report, String> {
    let dispatcher = |services: Services| {
        Dispatcher::new(def.clone(), &Registry::new(), services, options.clone())
            .map_err(|e| e.to_string())
    };
    let event = match &record {
        Ok(Parsed::Event(e)) => Some((**e).clone()),
        _ => None,
    };
    if dry_run {
        let copy = LocalStore::memory();
        copy_state(source, &copy).await?;
        let recorder = Recorder::default();
        let services = lifecycle_embedded::services(
            copy,
            recorder.clone(),
            Arc::new(ManualClock::at(SystemTime::now())),
        );
        let mut report = dispatcher(services)?.dispatch(record, Deadline::NONE).await;
        report.calls = recorder.calls();
        return Ok(report);
    }
    // On purpose: a processed event's delivery record goes, so it is not a duplicate.
    if let Some(key) = event.as_ref().and_then(delivery_key) {
        let now = SystemTime::now();
        // A lifecycle event's delivery is an entry on its node.
        let node = event
            .as_ref()
            .filter(|e| on_node(e))
            .and_then(|e| e.lifecycle.as_ref())
            .map(|l| l.instance_id.as_str());
        let dropped = match source {
            Source::Table(table) => table
                .0
                .forget_for_replay(&key, node, now)
                .await
                .map_err(|e| e.to_string())?,
            Source::File(store) => store
                .forget_for_replay(&key, node, now)
                .map_err(|e| e.to_string())?,
        };
        if dropped {
            tracing::info!(delivery = %key, "replay: the earlier processing's record dropped");
        }
    }
    Ok(match source {
        Source::Table(table) => {
            dispatcher(table.1.clone())?
                .dispatch(record, Deadline::NONE)
                .await
        }
        Source::File(store) => {
            let recorder = Recorder::default();
            let services = lifecycle_embedded::services(
                store.clone(),
                recorder.clone(),
                Arc::new(ManualClock::at(SystemTime::now())),
            );
            let mut report = dispatcher(services)?.dispatch(record, Deadline::NONE).await;
            report.calls = recorder.calls();
            report
        }
    })
}

/// Copies the state table — nodes, command records, send guards; not the delivery records
/// or entries, so the replay is not a duplicate — from the source into `copy`: node queries (`nodes:`
/// aliases, `node_count`) see what they would see. On DynamoDB that is a `Scan`.
async fn copy_state(source: &Source, copy: &LocalStore) -> Result<(), String> {
    let items = match source {
        Source::Table(table) => table.0.items().await,
        Source::File(store) => store.items(),
    }
    .map_err(|e| e.to_string())?;
    for mut item in items {
        let delivery = item
            .get(lifecycle::node::ATTR_IDENT)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|id| id.starts_with(lifecycle::delivery::DELIVERY_PREFIX));
        if !delivery {
            // Nor the delivery entries on nodes, nor the leases: the copy replays afresh.
            item.retain(|k, _| !lifecycle::delivery::is_internal(k));
            copy.insert_item(item).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
