//! `lifecycle handle` and `lifecycle init`: the real engine with the AWS backends.

use std::sync::Arc;
use std::time::Duration;

use lifecycle::{Deadline, event};
use lifecycle_aws::DynamoStore;
use lifecycle_runtime::{Dispatcher, Options, Registry, Report};

use crate::OutputFormat;
use crate::output::{finish, invalid_report, print};

/// Flags of `lifecycle handle`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Every task and condition of the configuration must be built in or declared in its
    /// `tasks:` section.
    #[command(flatten)]
    input: crate::EventArgs,
    /// The DynamoDB state table (see `lifecycle init`).
    #[arg(long, value_name = "NAME")]
    table: String,
    /// How long a launching or command event waits for a new node to reach the initial state.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait_timeout: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Runs `lifecycle handle`; returns the exit code.
pub fn run(args: Args) -> u8 {
    let fail = |msg: String, code: u8| {
        eprintln!("error: {msg}");
        if args.input.format == OutputFormat::Json {
            print(&[invalid_report(msg)], false, args.input.format);
        }
        code
    };
    let def = match crate::load_definition(&args.input.config) {
        Ok(d) => Arc::new(d),
        Err(e) => return fail(e, 2),
    };
    let input = match std::fs::read(&args.input.event) {
        Ok(i) => i,
        Err(e) => {
            return fail(
                format!("cannot read event {}: {e}", args.input.event.display()),
                2,
            );
        }
    };
    let records = match event::parse(&input) {
        Ok(r) => r,
        Err(e) => return fail(format!("{}: {e}", args.input.event.display()), 2),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e, 1),
    };
    let batch = records.len() > 1;
    let reports: Result<Vec<Report>, String> = rt.block_on(async {
        let services =
            lifecycle_aws::load_services(&args.table, &lifecycle_aws::Options::default()).await;
        let mut options = Options::default();
        options.wait_timeout = Duration::from_secs(args.wait_timeout);
        // `handle` registers nothing of its own: every name must be built in or declared.
        let dispatcher = Dispatcher::new(def, &Registry::new(), services, options)
            .map_err(|e| format!("{}: {e}", args.input.config.display()))?;
        let mut reports = Vec::with_capacity(records.len());
        for record in records {
            reports.push(dispatcher.dispatch(record, Deadline::NONE).await);
        }
        Ok(reports)
    });
    let reports = match reports {
        Ok(r) => r,
        Err(e) => return fail(e, 2),
    };
    finish(&reports, batch, args.input.format)
}

/// Runs `lifecycle init --table NAME`; returns the exit code.
pub fn init(table: &str) -> u8 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let result = rt.block_on(async {
        let config = lifecycle_aws::load_config(&lifecycle_aws::Timeouts::default()).await;
        DynamoStore::new(&config, table).init().await
    });
    match result {
        Ok(()) => {
            println!(
                "table {table} is ready (key Ident, index {}, TTL on {})",
                lifecycle_aws::TYPE_INDEX,
                lifecycle_aws::ATTR_EXPIRES
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
