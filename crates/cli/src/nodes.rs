//! `lifecycle nodes`: every node of the state table as an operator sees it — state, type,
//! the invocation holding it, pending commands, and what needs a look.

use std::path::PathBuf;
use std::time::SystemTime;

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
    let views = fleet(&items, args.item_type.as_deref(), SystemTime::now());
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
        "{:<21} {:<22} {:<10} {:<12} FLAGS",
        "NODE", "STATE", "TYPE", "PENDING"
    );
    for v in views {
        let mut flags: Vec<String> = v.flags.iter().map(|f| (*f).to_owned()).collect();
        if let Some((owner, until)) = &v.lease {
            flags.push(format!("held by {owner} until {until}"));
        }
        let _ = writeln!(
            s,
            "{:<21} {:<22} {:<10} {:<12} {}",
            v.node,
            v.state,
            v.item_type.as_deref().unwrap_or("-"),
            v.pending_commands.len(),
            flags.join(", ")
        );
    }
    let _ = writeln!(s, "{} node(s)", views.len());
    s
}
