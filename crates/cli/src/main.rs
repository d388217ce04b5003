//! `lifecycle`: validate a configuration, draw its state diagram, and run events through it on
//! the embedded local store (SPEC 7).
//!
//! Exit codes: 0 processed (failure handling included) or not supported; 1 the invocation ended
//! with an error; 2 invalid input, configuration or flags. Logs go to stderr (`RUST_LOG`).

mod handle;
mod nodes;
mod output;
mod reconcile;
mod replay;
mod set_state;
mod simulate;
mod svg;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lifecycle::config::{ConfigErrors, Definition};
use lifecycle::graph;

/// Drive EC2 Auto Scaling instances through a configured state machine.
#[derive(Debug, Parser)]
#[command(name = "lifecycle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of `graph`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GraphFormat {
    /// A Mermaid stateDiagram-v2 (renders on GitHub).
    Mermaid,
    /// Graphviz dot (`dot -Tsvg`).
    Dot,
    /// SVG, laid out and drawn here (no Graphviz needed).
    Svg,
}

/// Output format of `simulate`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// A human-readable summary.
    Text,
    /// One JSON object per event record (an array for a batch).
    Json,
}

/// The flags that name what to run: a configuration, an event, and how to print the result.
#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// The configuration file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The event: an EventBridge event, or an SNS/SQS envelope of one or more records.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration: exit 0 when valid, 2 with every error otherwise.
    ///
    /// Names of tasks and conditions that are neither built in nor declared in `tasks:` are
    /// warnings (a program embedding the library may register them); errors with --strict.
    Validate {
        /// The configuration file (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Treat names that nothing registers as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Print the state diagram of a configuration; with --table or --store, each state
    /// labelled with its nodes and the states with stuck nodes marked.
    Graph {
        /// The configuration file (YAML or JSON).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Diagram language.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
        /// Count the nodes of this DynamoDB state table (a `Scan`).
        #[arg(long, value_name = "NAME", conflicts_with = "store")]
        table: Option<String>,
        /// Count the nodes of this embedded store file.
        #[arg(long, value_name = "FILE")]
        store: Option<PathBuf>,
    },
    /// Run one event (or an envelope of several) through the real dispatcher on the embedded
    /// local store, with no AWS: built-in tasks act on the store and list the AWS calls they
    /// would make.
    Simulate(simulate::Args),
    /// Run one event (or an envelope of several) through the real dispatcher with the AWS
    /// backends: state in DynamoDB, Auto Scaling, SSM, SNS and Route 53 for real. Uses the
    /// standard AWS environment (credential chain, AWS_REGION, AWS_ENDPOINT_URL). Same output
    /// and exit codes as `simulate`.
    Handle(handle::Args),
    /// Create the DynamoDB state table (key `Ident`, an index on `ItemType`, TTL on
    /// `ExpiresAt`), or check an existing one. Idempotent.
    Init {
        /// The table name.
        #[arg(long, value_name = "NAME")]
        table: String,
    },
    /// Move a node by hand, from the state it must be in (--from) to another (--to): refused
    /// while an invocation holds the node, recorded on the node with who, when and why. On
    /// DynamoDB (--table) or an embedded store file (--store) to rehearse.
    SetState(set_state::Args),
    /// List every node: state, type, the invocation holding it, pending commands, and flags
    /// for what needs a look (failure, a stale lease, no type, transient faults in a row).
    Nodes(nodes::Args),
    /// Run an event again on purpose: a processed one (its delivery record is dropped, so it
    /// is not a duplicate) or one from a dead-letter queue. With --dry-run, on a copy of the
    /// table in memory, printing the AWS calls it would make.
    Replay(replay::Args),
    /// One reconciliation sweep (the configuration's `reconcile:`): compare the table with
    /// the Auto Scaling groups, resume stalled nodes, heartbeat or complete waiting actions,
    /// remove or report nodes whose instance is gone, list those in failure; print one
    /// report. With --dry-run, perform nothing and report what it would do.
    Reconcile(reconcile::Args),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { config, strict } => validate(&config, strict),
        Command::Graph {
            config,
            format,
            table,
            store,
        } => draw(&config, format, table.as_deref(), store.as_ref()),
        Command::Simulate(args) => simulate::run(args),
        Command::Handle(args) => handle::run(args),
        Command::Init { table } => handle::init(&table),
        Command::SetState(args) => set_state::run(args),
        Command::Nodes(args) => nodes::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Reconcile(args) => reconcile::run(args),
    };
    ExitCode::from(code)
}

/// Reads and compiles a configuration: every problem at once, prefixed with the file's name.
pub(crate) fn load_definition(path: &PathBuf) -> Result<Definition, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read configuration {}: {e}", path.display()))?;
    Definition::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn validate(path: &PathBuf, strict: bool) -> u8 {
    let def = match load_definition(path) {
        Ok(def) => def,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    // Names that are neither built in nor declared: a program embedding the library may
    // register them, so they are warnings — unless --strict (SPEC 3.1).
    let unknown = def.unregistered(|_| None);
    if strict && !unknown.is_empty() {
        eprintln!("{}: {}", path.display(), ConfigErrors(unknown));
        return 2;
    }
    for w in &unknown {
        eprintln!("warning: {w}");
    }
    let warnings = match unknown.len() {
        0 => String::new(),
        1 => " with 1 warning".to_owned(),
        n => format!(" with {n} warnings"),
    };
    println!(
        "{}: valid{warnings} ({} states, {} transitions, initial state {})",
        path.display(),
        def.states().len(),
        def.transitions().len(),
        def.initial_state()
    );
    0
}

fn draw(path: &PathBuf, format: GraphFormat, table: Option<&str>, store: Option<&PathBuf>) -> u8 {
    let def = match load_definition(path) {
        Ok(def) => def,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let f = match format {
        GraphFormat::Mermaid => graph::Format::Mermaid,
        GraphFormat::Dot | GraphFormat::Svg => graph::Format::Dot,
    };
    let mut counts = std::collections::BTreeMap::new();
    if table.is_some() || store.is_some() {
        let items = match nodes::items(table, store) {
            Ok(i) => i,
            Err((e, code)) => {
                eprintln!("error: {e}");
                return code;
            }
        };
        let now = std::time::SystemTime::now();
        let stale_after = def
            .reconcile()
            .map_or(lifecycle::config::reconcile::DEFAULT_STALE_AFTER, |r| {
                r.stale_after
            });
        for v in lifecycle_runtime::manual::fleet(&items, None, now, stale_after) {
            let c: &mut graph::StateCount = counts.entry(v.state.clone()).or_default();
            c.nodes += 1;
            if v.flags
                .iter()
                .any(|f| matches!(*f, "failure" | "stale-lease" | "retrying" | "stale"))
            {
                c.stuck += 1;
            }
        }
    }
    let text = graph::render_with(&def, f, &counts);
    if !matches!(format, GraphFormat::Svg) {
        print!("{text}");
        return 0;
    }
    match svg::render(&text) {
        Ok(svg) => {
            print!("{svg}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
