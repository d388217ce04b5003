//! `lifecycle set-state`: an operator's manual move of a node, on DynamoDB (`--table`) or on
//! the embedded store (`--store FILE`, to rehearse a repair), under the same lease and
//! compare-and-set as every event (SPEC 9).

use std::path::PathBuf;
use std::sync::Arc;

use lifecycle_embedded::{FileItems, LocalStore, ManualClock, Recorder};
use lifecycle_runtime::Services;
use lifecycle_runtime::manual::{ManualMove, MoveError, set_state};

use crate::OutputFormat;

/// Flags of `lifecycle set-state`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["table", "store"])))]
pub struct Args {
    /// The DynamoDB state table.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// An embedded store file (as `simulate --store` keeps), to rehearse.
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// The node (instance id).
    #[arg(long, value_name = "ID")]
    node: String,
    /// The state the node must be in now; anything else changes nothing.
    #[arg(long, value_name = "STATE")]
    from: String,
    /// The state to move it to.
    #[arg(long, value_name = "STATE")]
    to: String,
    /// Why: recorded on the node with who and when.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// Who is moving the node: `LIFECYCLE_OPERATOR`, else `USER`, else `operator`.
fn operator() -> String {
    std::env::var("LIFECYCLE_OPERATOR")
        .or_else(|_| std::env::var("USER"))
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "operator".to_owned())
}

/// Runs `lifecycle set-state`; returns the exit code: 0 moved, 1 refused (the node is
/// elsewhere, held, missing) or the store failed, 2 invalid flags.
pub fn run(args: Args) -> u8 {
    let invalid = |msg: String| {
        eprintln!("error: {msg}");
        2
    };
    for (flag, value) in [
        ("--node", &args.node),
        ("--from", &args.from),
        ("--to", &args.to),
    ] {
        if value.trim().is_empty() {
            return invalid(format!("{flag} must not be empty"));
        }
    }
    if args.from == args.to {
        return invalid(format!(
            "--from and --to are both {:?}: nothing to move",
            args.from
        ));
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return invalid(format!("cannot start the async runtime: {e}")),
    };
    let services = match (&args.table, &args.store) {
        (Some(table), _) => runtime.block_on(lifecycle_aws::load_services(
            table,
            &lifecycle_aws::Options::default(),
        )),
        (None, Some(path)) => match FileItems::open(path) {
            Ok(items) => embedded(LocalStore::new(items)),
            Err(e) => return invalid(format!("{}: {e}", path.display())),
        },
        (None, None) => return invalid("--table or --store is required".into()),
    };
    let moved = runtime.block_on(set_state(
        &services,
        &args.node,
        (&args.from, &args.to),
        &operator(),
        args.reason.as_deref(),
    ));
    print(&moved, args.format);
    match moved {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn embedded(store: LocalStore) -> Services {
    lifecycle_embedded::services(
        store,
        Recorder::default(),
        Arc::new(ManualClock::at(std::time::SystemTime::now())),
    )
}

fn print(moved: &Result<ManualMove, MoveError>, format: OutputFormat) {
    match (moved, format) {
        (Ok(m), OutputFormat::Text) => println!(
            "node {}: {} -> {} (by {}{})",
            m.node,
            m.from,
            m.to,
            m.by,
            m.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        (Ok(m), OutputFormat::Json) => {
            println!("{}", serde_json::json!({"moved": m, "error": null}))
        }
        (Err(e), OutputFormat::Json) => println!(
            "{}",
            serde_json::json!({"moved": null, "error": e.to_string(), "retryable": e.is_transient()})
        ),
        (Err(_), OutputFormat::Text) => {}
    }
}
