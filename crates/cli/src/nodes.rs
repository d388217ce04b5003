//! `lifecycle nodes`: every node of the state table as an operator sees it — state, type,
//! the invocation holding it, pending commands, and what needs a look.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lifecycle_embedded::{FileItems, LocalStore};
use lifecycle_runtime::manual::{NodeView, fleet};

use crate::OutputFormat;

/// Flags of `lifecycle nodes`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["table", "store"])))]
pub struct Args {
    /// The DynamoDB state table (read with a Scan: the caller needs `dynamodb:Scan`).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// An embedded store file (as `simulate --store` keeps).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Only nodes of this `ItemType`.
    #[arg(long = "type", value_name = "TYPE")]
    item_type: Option<String>,
    /// Flag as `stale` a node that waits (a command in flight, or cloud-init's state) and has
    /// not changed for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    stale_after: u64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// Runs `lifecycle nodes`; returns the exit code: 0 listed, 1 the store failed, 2 invalid
/// flags.
pub fn run(args: Args) -> u8 {
    let items = match items(args.table.as_deref(), args.store.as_ref()) {
        Ok(i) => i,
        Err((e, code)) => {
            eprintln!("error: {e}");
            return code;
        }
    };
    let views = fleet(
        &items,
        args.item_type.as_deref(),
        SystemTime::now(),
        Duration::from_secs(args.stale_after),
    );
    match args.format {
        OutputFormat::Json => match serde_json::to_string(&views) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        },
        OutputFormat::Text => print!("{}", text(&views)),
    }
    0
}

/// Every item of the DynamoDB table `table` (a `Scan`) or of the store file `store`; the
/// error says why, with the exit code (2 for a flag, 1 for the store).
pub(crate) fn items(
    table: Option<&str>,
    store: Option<&PathBuf>,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, (String, u8)> {
    match (table, store) {
        (Some(table), _) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| (format!("cannot start the async runtime: {e}"), 2))?;
            runtime
                .block_on(async {
                    let options = lifecycle_aws::Options::default();
                    let config = lifecycle_aws::load_config(&options.timeouts).await;
                    lifecycle_aws::DynamoStore::new(&config, table)
                        .items()
                        .await
                })
                .map_err(|e| (e.to_string(), 1))
        }
        (None, Some(path)) => {
            let items =
                FileItems::open(path).map_err(|e| (format!("{}: {e}", path.display()), 2))?;
            LocalStore::new(items)
                .items()
                .map_err(|e| (e.to_string(), 1))
        }
        (None, None) => Err(("--table or --store is required".to_owned(), 2)),
    }
}

fn text(views: &[NodeView]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<21} {:<22} {:<10} {:<8} {:<7} FLAGS",
        "NODE", "STATE", "TYPE", "AGE", "PENDING"
    );
    for v in views {
        let mut flags: Vec<String> = v.flags.iter().map(|f| (*f).to_owned()).collect();
        if let Some((owner, until)) = &v.lease {
            flags.push(format!("held by {owner} until {until}"));
        }
        let _ = writeln!(
            s,
            "{:<21} {:<22} {:<10} {:<8} {:<7} {}",
            v.node,
            v.state,
            v.item_type.as_deref().unwrap_or("-"),
            v.age_secs.map_or_else(|| "-".to_owned(), age),
            v.pending_commands.len(),
            flags.join(", ")
        );
    }
    let _ = writeln!(s, "{} node(s)", views.len());
    s
}

/// An age, short: `45s`, `12m`, `3h05m`, `2d04h`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}
