//! `lifecycle replay`: an operator runs an event again on purpose — one that was processed
//! already (its delivery record would make it a duplicate, SPEC 9), or one fished out of a
//! dead-letter queue — on DynamoDB (`--table`) or an embedded store file (`--store`). With
//! `--dry-run` it runs against a copy of the table on an in-memory store and prints the AWS
//! calls it would make.

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
pub struct Args {
    /// Every task and condition must be built in or declared in `tasks:`.
    #[command(flatten)]
    input: crate::EventArgs,
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
    let format = args.input.format;
    let fail = |msg: String, code: u8| {
        eprintln!("error: {msg}");
        if format == crate::OutputFormat::Json {
            print(&[invalid_report(msg)], false, format);
        }
        code
    };
    let def = match crate::load_definition(&args.input.config) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(e, 2),
    };
    let records = match std::fs::read(&args.input.event)
        .map_err(|e| format!("cannot read event {}: {e}", args.input.event.display()))
        .and_then(|bytes| {
            event::parse(&bytes).map_err(|e| format!("{}: {e}", args.input.event.display()))
        }) {
        Ok(r) => r,
        Err(e) => return fail(e, 2),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}"), 1),
    };
    let batch = records.len() > 1;
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
