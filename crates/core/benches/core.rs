//! Benchmarks of the core: event parsing per envelope, configuration compile, and the pure
//! engine's transitions per second (the dispatcher's figure is in the embedded crate's
//! benches). Results are recorded in `docs/BENCHMARKS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lifecycle::config::Definition;
use lifecycle::engine::{Action, Engine, EventFacts, Feedback, Step};
use lifecycle::event;

const SWARM: &str = include_str!("../../../examples/docker-swarm/lifecycle.yaml");

#[path = "support/chain.rs"]
mod chain;
use chain::chain;

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
    c.bench_function("compile/docker_swarm", |b| {
        b.iter(|| Definition::from_yaml(black_box(SWARM)).unwrap())
    });
    let big = chain(100);
    c.bench_function("compile/chain_100", |b| {
        b.iter(|| Definition::from_yaml(black_box(&big)).unwrap())
    });
}

fn engine(c: &mut Criterion) {
    const N: usize = 100;
    let def = Definition::from_yaml(&chain(N)).unwrap();
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

    g.finish();
}

criterion_group!(benches, parsing, compile, engine);
criterion_main!(benches);
