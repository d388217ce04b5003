//! `lifecycle-bench`: the measuring side of `scripts/bench`.
//!
//! - `proxy` — a counting HTTP proxy in front of moto's server: every AWS request of the
//!   process under measurement goes through it, and `GET /__bench/take` answers (and resets)
//!   the requests seen by operation (`dynamodb:GetItem`, `sns:Publish`, …), so calls per
//!   event are counted at the HTTP layer, for our binaries and for the original alike.
//! - `burst` — many events for many nodes delivered at once to the real dispatcher on the
//!   AWS backends (through the same proxy, in process), against the moto-backed table:
//!   throughput, latency percentiles, and the proof that no transition was lost or repeated.
//!
//! Loopback only: the upstream must be `http://127.0.0.1:PORT`, credentials are fake.

mod burst;
mod http;
mod proxy;

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "lifecycle-bench",
    about = "Measuring tools behind scripts/bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
enum Command {
    /// A counting proxy to moto: prints `ready PORT`, serves until its stdin is closed.
    Proxy {
        /// moto's endpoint, `http://127.0.0.1:PORT`.
        #[arg(long)]
        upstream: String,
    },
    /// The burst: concurrent launches and status events for many nodes.
    Burst(burst::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Proxy { upstream } => run_proxy(&upstream),
        Command::Burst(args) => burst::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifecycle-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The proxy as a process of its own, alive as long as its standard input is open (so it
/// never outlives the script that started it).
fn run_proxy(upstream: &str) -> anyhow::Result<()> {
    let proxy = proxy::Proxy::start(upstream, false)?;
    println!("ready {}", proxy.port());
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    Ok(())
}
