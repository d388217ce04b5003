//! The pure engine (SPEC 4.2, 4.3) driven by hand: property tests of its invariants under any
//! feedback, and table rows for the rules that need no store. The dispatcher's behaviour with
//! a store is tested in the embedded crate (`dispatcher_rows.rs`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifecycle::Fault;
use lifecycle::config::Definition;
use lifecycle::engine::{Action, Engine, EventFacts, Feedback, Step, StopReason};
use proptest::prelude::*;

/// Runs the engine from `start`: tasks succeed, conditions answer `cond(name)`, writes succeed.
fn drive(
    def: &Definition,
    start: &str,
    cond: impl Fn(&str) -> bool,
) -> (Vec<String>, StopReason, String) {
    let mut engine = Engine::new(def, def.state_id(start).unwrap(), EventFacts::default());
    let mut step = engine.start();
    let finish = loop {
        step = match step {
            Step::Run(Action::Task { .. }) => engine.resume(Feedback::Done),
            Step::Run(Action::Condition { id }) => {
                engine.resume(Feedback::Checked(cond(def.condition_name(id))))
            }
            Step::Run(Action::Persist { .. }) => engine.resume(Feedback::Persisted),
            Step::Finished(f) => break f,
        };
    };
    let trace = engine.trace().iter().map(|s| (*s).to_owned()).collect();
    (
        trace,
        finish.reason,
        def.state_name(engine.state()).to_owned(),
    )
}

#[test]
fn one_trigger_name_fires_along_the_first_transition_whose_checks_pass() {
    // SPEC 4.2: a trigger name with several transitions from a state fires the first whose
    // checks pass; the others are not tried in that pass.
    let def = Definition::from_yaml(
        r"
- {source: a, dest: null, triggers: [{name: go, after: [t_one]}]}
- {source: a, dest: null, triggers: [{name: go, after: [t_two]}]}
- {source: a, dest: null, triggers: [{name: other, after: [t_three]}]}
",
    )
    .unwrap();
    let (trace, reason, state) = drive(&def, "a", |_| true);
    assert_eq!(trace, ["t_one", "t_three"]);
    assert_eq!(reason, StopReason::NoStateChange);
    assert_eq!(state, "a");

    // When the first one's checks fail, the next transition of the same name is tried.
    let def = Definition::from_yaml(
        r"
- {source: a, dest: b, triggers: [{name: go, conditions: [c_x], after: [t_one]}]}
- {source: a, dest: null, triggers: [{name: go, after: [t_two]}]}
- {source: b, dest: c, triggers: [{name: on}]}
",
    )
    .unwrap();
    let (trace, _, state) = drive(&def, "a", |_| false);
    assert_eq!(trace, ["c_x", "t_two"]);
    assert_eq!(state, "a");
    let (trace, _, state) = drive(&def, "a", |_| true);
    assert_eq!(trace, ["c_x", "t_one"]);
    assert_eq!(state, "c");
}

// ---------------------------------------------------------------------------------------------
// Engine invariants (property tests on the pure engine)
// ---------------------------------------------------------------------------------------------

/// Configurations with failure handling, internal transitions, stop flags, `ignore_errors`,
/// trigger names shared between transitions and cycles.
const PROP_CONFIGS: &[&str] = &[
    r"
transitions:
  - source: s0
    dest: s1
    triggers:
      - {name: go, prepare: [t_a], conditions: [c_a], unless: [c_b], before: [t_b], after: [t_c]}
      - {name: alt, ignore_errors: true, before: [t_d]}
  - source: s1
    dest: s2
    triggers:
      - {name: next, conditions: [c_c], after: [t_a]}
      - {name: skip, ignore_errors: true, prepare: [t_b], after: [t_c]}
  - source: [s1, s2]
    dest: null
    triggers:
      - {name: note, before: [t_a], after: [t_b]}
  - source: failure
    dest: recovered
    triggers:
      - {name: strict, prepare: [t_a], after: [t_b]}
      - {name: recover, ignore_errors: true, conditions: [c_a], after: [t_c]}
",
    r"
transitions:
  - source: a
    dest: b
    triggers: [{name: ab, conditions: [c_a], before: [t_a]}]
  - source: b
    dest: c
    triggers: [{name: bc, ignore_errors: true, prepare: [t_b], after: [t_c]}]
  - source: c
    dest: a
    triggers: [{name: ca, unless: [c_b], after: [t_d]}]
  - source: [failure, c, a]
    dest: d
    triggers: [{name: fd, ignore_errors: true, conditions: [c_c], before: [t_a]}]
  - source: d
    dest: null
    triggers: [{name: ab, stop_after_trigger: true, after: [t_b]}, {name: dd, ignore_errors: true, before: [t_c]}]
  - source: [d, b]
    dest: e
    triggers: [{name: ca, before: [t_d]}]
  - source: e
    dest: null
    triggers: [{name: again, ignore_errors: true, after: [t_a]}, {name: fd, prepare: [t_b]}]
",
    r"
transitions:
  - source: x
    dest: y
    stop_after_state_change: true
    triggers: [{name: xy, before: [t_a], after: [t_b]}]
  - source: y
    dest: z
    triggers:
      - {name: yz, stop_after_trigger: true, after: [t_c]}
      - {name: yy, ignore_errors: true, conditions: [c_a]}
  - source: [x, y, z]
    dest: null
    triggers: [{name: poke, ignore_errors: true, prepare: [t_d], stop_after_trigger: true}]
  - source: failure
    dest: w
    stop_after_state_change: true
    triggers: [{name: fw, ignore_errors: true, before: [t_a]}]
  - source: w
    dest: x
    triggers: [{name: wx, unless: [c_b, c_c]}]
",
];

/// Every action the definition can ask for, times every state it can be in, plus slack: the
/// engine enters each state at most once, so it cannot take more steps than this.
fn step_bound(def: &Definition) -> usize {
    let per_round: usize = def
        .transitions()
        .iter()
        .map(|t| {
            let actions: usize = t
                .triggers
                .iter()
                .map(|g| {
                    g.prepare.len()
                        + g.conditions.len()
                        + g.unless.len()
                        + g.before.len()
                        + g.after.len()
                        + 1
                })
                .sum();
            actions * t.sources.len()
        })
        .sum();
    (def.states().len() + 1) * (per_round + 1) + 2
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn engine_invariants_hold_for_any_feedback(
        config in 0..PROP_CONFIGS.len(),
        start in 0usize..32,
        is_command in any::<bool>(),
        status_successful in any::<bool>(),
        transient_retry in any::<bool>(),
        choices in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let def = Definition::from_yaml(PROP_CONFIGS[config])
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let start = def.state_id(&def.states()[start % def.states().len()]).unwrap();
        let facts = EventFacts { is_command, status_successful, transient_retry };
        let mut engine = Engine::new(&def, start, facts);
        let start_in_failure = start == def.failure();
        let bound = step_bound(&def);
        let mut choices = choices.into_iter();
        let mut steps = 0usize;
        let mut actions = 0usize;
        let mut step = engine.start();
        let finish = loop {
            steps += 1;
            prop_assert!(steps <= bound, "more than {bound} steps");
            let action = match step {
                Step::Finished(f) => break f,
                Step::Run(a) => a,
            };
            let choice = choices.next().unwrap_or(u8::MAX);
            let feedback = match action {
                Action::Task { .. } => {
                    actions += 1;
                    if choice % 4 == 0 { Feedback::Failed(Fault::permanent("boom")) } else { Feedback::Done }
                }
                Action::Condition { .. } => {
                    actions += 1;
                    match choice % 5 {
                        0 => Feedback::Failed(Fault::transient("flaky")),
                        1 | 2 => Feedback::Checked(false),
                        _ => Feedback::Checked(true),
                    }
                }
                Action::Persist { from, to } => {
                    let name = def.state_name(to);
                    prop_assert_eq!(def.state_id(name), Some(to), "persisting an unknown state");
                    prop_assert!(def.states().iter().any(|s| s == name));
                    prop_assert_eq!(from, engine.state(), "persist from a state the engine is not in");
                    prop_assert_ne!(to, start, "re-entering the starting state");
                    prop_assert!(!engine.passed().contains(&to), "entering {} twice", name);
                    match choice % 32 {
                        0 => Feedback::Conflict { found: "elsewhere".into() },
                        1 => Feedback::PersistFailed(Fault::transient("disk")),
                        _ => Feedback::Persisted,
                    }
                }
            };
            step = engine.resume(feedback);
        };

        // Passed states never repeat and never include the start.
        let passed = engine.passed().to_vec();
        for (i, s) in passed.iter().enumerate() {
            prop_assert!(!passed[i + 1..].contains(s), "state {} passed twice", def.state_name(*s));
            prop_assert_ne!(*s, start);
        }
        prop_assert_eq!(engine.state(), passed.last().copied().unwrap_or(start));
        prop_assert_eq!(engine.trace().len(), actions);
        prop_assert_eq!(engine.start_state(), start);
        match finish.reason {
            StopReason::Error => prop_assert!(finish.error.is_some()),
            _ => prop_assert!(finish.error.is_none()),
        }
        prop_assert_eq!(finish.reason == StopReason::Conflict, finish.conflict.is_some());
        if finish.reason == StopReason::FailureUnhandled {
            prop_assert_eq!(engine.state(), def.failure());
        }
        if engine.state() == def.failure()
            && matches!(finish.reason, StopReason::NoTrigger | StopReason::NoStateChange)
        {
            prop_assert!(false, "stopped in failure without saying failure_unhandled");
        }
        // Entering failure marks the event failed.
        if passed.contains(&def.failure()) {
            prop_assert!(engine.failed());
        }
        // A transient fault never sends the node into failure handling while retries are
        // allowed: it ends the run, retryable.
        if transient_retry && !start_in_failure {
            let handled_transient = engine.errors().iter().any(|e| !e.ignored && e.message.contains("flaky"));
            prop_assert!(!handled_transient, "a transient fault entered failure handling");
        }
        if let Some(e) = &finish.error
            && e.to_string().contains("flaky")
            && transient_retry
        {
            prop_assert!(e.kind().is_transient());
        }
        // Once finished, the engine stays finished.
        prop_assert_eq!(engine.resume(Feedback::Done), Step::Finished(finish));
    }
}

/// The writes a deferring engine asks for, as `from -> to`, the tasks it runs, and what it
/// leaves unwritten; `conflict_at` answers the nth write (from 0) with a conflict.
type Deferred<'d> = (
    Vec<String>,
    Vec<String>,
    Option<(String, String)>,
    Engine<'d>,
);

fn drive_deferring<'d>(
    def: &'d Definition,
    start: &str,
    conflict_at: Option<usize>,
) -> Deferred<'d> {
    let mut engine =
        Engine::new(def, def.state_id(start).unwrap(), EventFacts::default()).deferring();
    let (mut writes, mut tasks) = (Vec::new(), Vec::new());
    let mut step = engine.start();
    loop {
        step = match step {
            Step::Run(Action::Task { id }) => {
                tasks.push(def.task_name(id).to_owned());
                engine.resume(Feedback::Done)
            }
            Step::Run(Action::Condition { .. }) => engine.resume(Feedback::Checked(true)),
            Step::Run(Action::Persist { from, to }) => {
                let n = writes.len();
                writes.push(format!(
                    "{} -> {}",
                    def.state_name(from),
                    def.state_name(to)
                ));
                if conflict_at == Some(n) {
                    engine.resume(Feedback::Conflict {
                        found: "elsewhere".into(),
                    })
                } else {
                    engine.resume(Feedback::Persisted)
                }
            }
            Step::Finished(_) => break,
        };
    }
    let unwritten = engine
        .unwritten()
        .map(|(a, b)| (def.state_name(a).to_owned(), def.state_name(b).to_owned()));
    (writes, tasks, unwritten, engine)
}

#[test]
fn a_deferring_engine_writes_only_before_a_task_whose_repetition_matters() {
    // SPEC 9, the fewest writes: `complete_lifecycle_action` may run again (a completion of
    // an action no longer active is a no-op), `t_external` may not — nothing is known of it.
    let def = Definition::from_yaml(
        r"
- {source: a, dest: b, triggers: [{name: one}]}
- {source: b, dest: c, triggers: [{name: two, after: [complete_lifecycle_action]}]}
- {source: c, dest: d, triggers: [{name: three, after: [t_external]}]}
- {source: d, dest: e, triggers: [{name: four}]}
",
    )
    .unwrap();
    let (writes, tasks, unwritten, engine) = drive_deferring(&def, "a", None);
    assert_eq!(writes, ["a -> d"], "one write, before the external task");
    assert_eq!(tasks, ["complete_lifecycle_action", "t_external"]);
    assert_eq!(
        unwritten,
        Some(("d".into(), "e".into())),
        "the rest is the driver's"
    );
    assert_eq!(
        engine
            .passed()
            .iter()
            .map(|s| def.state_name(*s))
            .collect::<Vec<_>>(),
        ["b", "c", "d", "e"]
    );
    // The marker a write carries: the transition that entered the state written.
    let (from, trigger, to) = engine.entered_by().unwrap();
    assert_eq!(
        (def.state_name(from), trigger, def.state_name(to)),
        ("d", "four", "e")
    );

    // A lost write before the task: nothing of the deferred states was stored, so the
    // engine is back where the table is, and the task does not run.
    let (writes, tasks, unwritten, engine) = drive_deferring(&def, "a", Some(0));
    assert_eq!(writes, ["a -> d"]);
    assert_eq!(tasks, ["complete_lifecycle_action"]);
    assert_eq!(unwritten, None);
    assert_eq!(def.state_name(engine.state()), "a");
    assert!(engine.passed().is_empty());

    // Without deferring, every state is written as it is entered.
    let (trace, reason, state) = drive(&def, "a", |_| true);
    assert_eq!(trace, ["complete_lifecycle_action", "t_external"]);
    assert_eq!((reason, state.as_str()), (StopReason::NoTrigger, "e"));
}
