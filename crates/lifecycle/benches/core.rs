//! Benchmarks of the core: event parsing per envelope, configuration compile, and the engine's
//! transitions per second with no-op tasks (pure engine, and through the dispatcher with the
//! in-memory store). Results are recorded in `docs/BENCHMARKS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lifecycle::clock::{Deadline, ManualClock};
use lifecycle::config::Definition;
use lifecycle::dispatch::{Dispatcher, Options};
use lifecycle::engine::{Action, Engine, EventFacts, Feedback, Step};
use lifecycle::event::{self, Event, Source};
use lifecycle::services::{Recorder, Services};
use lifecycle::store::LocalStore;
use lifecycle::tasks::Registry;
use lifecycle::tasks::simulated::{Outcome, SimulatedTask};

const SWARM: &str = include_str!("../../../examples/docker-swarm/lifecycle.yaml");

/// A chain `s0 -> s1 -> ... -> sN`, each trigger running one no-op task before and after.
fn chain(n: usize) -> String {
    let mut s = String::from("transitions:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{source: s{i}, dest: s{}, triggers: [{{name: t{i}, before: [noop], after: [noop]}}]}}\n",
            i + 1
        ));
    }
    s
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register_task("noop", Arc::new(SimulatedTask(Outcome::Ok)));
    r
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, text) in [
        (
            "eventbridge",
            include_str!("../tests/fixtures/eventbridge-launch.json"),
        ),
        (
            "sns",
            include_str!("../tests/fixtures/sns-launch-lifecycle.json"),
        ),
        ("sqs", include_str!("../tests/fixtures/sqs-launch.json")),
        (
            "sns_in_sqs",
            include_str!("../tests/fixtures/sqs-sns-terminate.json"),
        ),
        (
            "hook_direct",
            include_str!("../tests/fixtures/hook-direct-launch.json"),
        ),
        (
            "ssm_status",
            include_str!("../tests/fixtures/sns-command-status-change.json"),
        ),
    ] {
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| event::parse(black_box(text.as_bytes())).unwrap())
        });
    }
    g.finish();
}

fn compile(c: &mut Criterion) {
    let r = registry();
    c.bench_function("compile/docker_swarm", |b| {
        b.iter(|| Definition::from_yaml(black_box(SWARM), &r).unwrap())
    });
    let big = chain(100);
    c.bench_function("compile/chain_100", |b| {
        b.iter(|| Definition::from_yaml(black_box(&big), &r).unwrap())
    });
}

fn engine(c: &mut Criterion) {
    const N: usize = 100;
    let def = Definition::from_yaml(&chain(N), &registry()).unwrap();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("pure_chain_100_transitions", |b| {
        b.iter(|| {
            let mut e = Engine::new(&def, def.initial(), EventFacts::default());
            let mut step = e.start();
            loop {
                step = match step {
                    Step::Run(Action::Task { .. }) => e.resume(Feedback::Done),
                    Step::Run(Action::Condition { .. }) => e.resume(Feedback::Checked(true)),
                    Step::Run(Action::Persist { .. }) => e.resume(Feedback::Persisted),
                    Step::Finished(f) => break black_box(f),
                };
            }
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dispatcher = Dispatcher::new(
        Arc::new(Definition::from_yaml(&chain(N), &registry()).unwrap()),
        Services::embedded(
            LocalStore::memory(),
            Recorder::default(),
            Arc::new(ManualClock::at(SystemTime::now())),
        ),
        Options::default(),
    );
    let scheduled = Event {
        source: Source::Schedule,
        name: "s0".into(),
        id: None,
        time: None,
        region: None,
        account: None,
        resources: vec![],
        lifecycle: None,
        command: None,
        rule: Some("s0".into()),
        warnings: vec![],
    };
    g.bench_function("dispatch_chain_100_transitions", |b| {
        b.iter(|| rt.block_on(dispatcher.handle(black_box(scheduled.clone()), Deadline::NONE)))
    });
    g.finish();
}

criterion_group!(benches, parsing, compile, engine);
criterion_main!(benches);
