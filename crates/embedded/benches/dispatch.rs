//! Benchmark of the runtime's dispatcher on the embedded store: transitions per second with
//! no-op tasks, the loader and the engine driven together. Results are recorded in
//! `docs/BENCHMARKS.md` (the pure engine's figure is in the core's benches).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lifecycle::event::{Event, Source};
use lifecycle::{Deadline, Definition};
use lifecycle_embedded::simulated::{Outcome, SimulatedTask};
use lifecycle_embedded::{LocalStore, ManualClock, Recorder};
use lifecycle_runtime::{Dispatcher, Options, Registry};

#[path = "../../core/benches/support/chain.rs"]
mod chain;
use chain::chain;

fn dispatch(c: &mut Criterion) {
    const N: usize = 100;
    let mut registry = Registry::new();
    registry.register_task("noop", Arc::new(SimulatedTask(Outcome::Ok)));
    let services = lifecycle_embedded::services(
        LocalStore::memory(),
        Recorder::default(),
        Arc::new(ManualClock::at(SystemTime::now())),
    );
    let def = Arc::new(Definition::from_yaml(&chain(N)).unwrap());
    let dispatcher = Dispatcher::new(def, &registry, services, Options::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut scheduled = Event::new(Source::Schedule, "s0");
    scheduled.rule = Some("s0".into());
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("dispatch_chain_100_transitions", |b| {
        b.iter(|| rt.block_on(dispatcher.handle(black_box(scheduled.clone()), Deadline::NONE)))
    });
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
