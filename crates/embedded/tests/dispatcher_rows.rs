//! Behaviour of processing one event (SPEC 4, with 2.3 and 2.5), table-driven: every row is a
//! configuration, the table items it starts from, an event and the outcomes of the scripted
//! tasks and conditions it names, and what the report, the store and the recorded AWS calls
//! must show afterwards. Rows run through the real [`Dispatcher`] on the embedded store with a
//! manual clock (nothing sleeps). The pure engine's property tests are in the core
//! (`crates/core/tests/engine.rs`).
//!
//! Scripted names: tasks `t_ok*` succeed and `t_err*` fail; conditions `c_true*`, `c_false*`
//! and `c_err*` are true, false or fail; `t_steal` moves the node behind the engine's back;
//! any other non-built-in name takes the outcome its row gives it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use lifecycle::config::Definition;
use lifecycle::event::Event;
use lifecycle::{Deadline, FaultKind};
use lifecycle_embedded::{LocalStore, Recorder};
use lifecycle_runtime::{Call, Clock, Dispatcher, Options, Report};
use serde_json::{Map, Value};

use common::Outcome::{Err as Fail, False, Ok as Pass, True};
use common::{
    CloudInitClock, Journal, LAUNCH, Outcome, STOLEN, Write, command, command_on, command_record,
    launch, launch_from_warm_pool, node, registry_for, scheduled, terminate,
};

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// In [`Expect::initial`] or [`Expect::final_state`]: not checked.
const ANY: &str = "*";

/// How the store must look after the row.
#[derive(Debug, Clone, Copy)]
enum StoreCheck {
    /// With a node: its item's `ItemStatus` is the final state, and the status writes were
    /// exactly the passed states, each conditional on the one before (SPEC 4.4). Without a
    /// node: no status was written and no node item changed.
    Auto,
    /// Every item is as seeded and no status was written.
    Unchanged,
    /// The row's own `check` looks at the store.
    Custom,
}

/// What a row must produce.
struct Expect {
    initial: &'static str,
    final_state: &'static str,
    passed: &'static [&'static str],
    /// Task and condition names in the order they ran (the report's `tasks`).
    tasks: &'static [&'static str],
    stopped_by: &'static str,
    /// A substring of the invocation's error, or no error at all.
    error: Option<&'static str>,
    exit: i32,
    /// The reported (handled) errors: (trigger, task, ignored).
    errors: &'static [(&'static str, Option<&'static str>, bool)],
    /// Recorded AWS calls as `Operation` or `Operation:LifecycleActionResult`; `None`: not
    /// checked.
    calls: Option<&'static [&'static str]>,
    store: StoreCheck,
    /// Further checks.
    check: Option<fn(&Run)>,
}

const EXPECT: Expect = Expect {
    initial: "",
    final_state: "",
    passed: &[],
    tasks: &[],
    stopped_by: "no_trigger",
    error: None,
    exit: 0,
    errors: &[],
    calls: Some(&[]),
    store: StoreCheck::Auto,
    check: None,
};

/// One row of the table.
struct Row {
    config: &'static str,
    event: Event,
    items: Vec<Map<String, Value>>,
    outcomes: Vec<(&'static str, Outcome)>,
    options: Options,
    deadline: Option<Duration>,
    cloud_init: Option<(u32, Map<String, Value>)>,
    expect: Expect,
}

impl Row {
    fn new(config: &'static str, event: Event) -> Self {
        Row {
            config,
            event,
            items: Vec::new(),
            outcomes: Vec::new(),
            options: {
                let mut o = Options::default();
                o.wait_timeout = Duration::from_secs(30);
                o.poll_interval = Duration::from_secs(5);
                o.heartbeat_interval = Duration::from_secs(10);
                o.record_wait = Duration::ZERO;
                o
            },
            deadline: None,
            cloud_init: None,
            expect: EXPECT,
        }
    }

    /// Seeds a node.
    fn node(mut self, id: &str, status: &str) -> Self {
        self.items.push(node(id, status));
        self
    }

    /// Seeds a command record sent by `sender`.
    fn record(mut self, id: &str, sender: &Event, instance: &str) -> Self {
        self.items.push(command_record(id, sender, instance));
        self
    }

    /// Sets outcomes by name (later ones win).
    fn outcomes(mut self, outcomes: &[(&'static str, Outcome)]) -> Self {
        self.outcomes.extend_from_slice(outcomes);
        self
    }

    fn outcome(self, name: &'static str, outcome: Outcome) -> Self {
        self.outcomes(&[(name, outcome)])
    }

    /// The cloud-init wait: at most `timeout` seconds, polling every `poll` seconds.
    fn wait(mut self, timeout: u64, poll: u64) -> Self {
        self.options.wait_timeout = Duration::from_secs(timeout);
        self.options.poll_interval = Duration::from_secs(poll);
        self
    }

    /// A Lambda deadline `secs` after the start.
    fn deadline(mut self, secs: u64) -> Self {
        self.deadline = Some(Duration::from_secs(secs));
        self
    }

    /// Cloud-init writes `item` after the dispatcher's `sleeps`th sleep.
    fn cloud_init(mut self, sleeps: u32, item: Map<String, Value>) -> Self {
        self.cloud_init = Some((sleeps, item));
        self
    }

    fn expecting(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// What a row did.
struct Run {
    report: Report,
    seeded: Vec<Map<String, Value>>,
    items: Vec<Map<String, Value>>,
    writes: Vec<Write>,
    calls: Vec<Call>,
    elapsed: Duration,
    sleeps: u32,
}

impl Run {
    fn item(&self, id: &str) -> Option<&Map<String, Value>> {
        self.items
            .iter()
            .find(|i| i.get("Ident").and_then(Value::as_str) == Some(id))
    }

    fn status(&self, id: &str) -> Option<&str> {
        self.item(id)
            .and_then(|i| i.get("ItemStatus"))
            .and_then(Value::as_str)
    }

    fn operations(&self) -> Vec<String> {
        self.calls.iter().map(call_summary).collect()
    }
}

fn call_summary(c: &Call) -> String {
    match c.input.get("LifecycleActionResult").and_then(Value::as_str) {
        Some(result) => format!("{}:{result}", c.operation),
        None => c.operation.to_owned(),
    }
}

/// The CLI's exit code for a report (SPEC 7): 2 for invalid input, 1 for another error.
fn exit_code(r: &Report) -> i32 {
    match r.error_kind {
        None => 0,
        Some(FaultKind::Invalid) => 2,
        Some(_) => 1,
    }
}

fn write(id: &str, from: &str, to: &str) -> Write {
    (id.to_owned(), from.to_owned(), to.to_owned())
}

fn run(row: &Row) -> Run {
    let registry = registry_for(row.config, &row.outcomes);
    let def = Definition::from_yaml(row.config)
        .unwrap_or_else(|e| panic!("test config does not compile: {e}"));
    let store = LocalStore::memory();
    for item in &row.items {
        store.insert_item(item.clone()).unwrap();
    }
    let seeded = store.items().unwrap();
    let recorder = Recorder::default();
    let clock = Arc::new(CloudInitClock::new(store.clone(), row.cloud_init.clone()));
    let journal = Journal::new(store.clone());
    let mut services = lifecycle_embedded::services(store.clone(), recorder.clone(), clock.clone());
    services.nodes = Arc::new(journal.clone());
    let deadline = row
        .deadline
        .map_or(Deadline::NONE, |d| Deadline::at(clock.now() + d));
    let dispatcher = Dispatcher::new(Arc::new(def), &registry, services, row.options.clone())
        .unwrap_or_else(|e| panic!("test config does not bind: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let report = runtime.block_on(dispatcher.handle(row.event.clone(), deadline));
    Run {
        report,
        seeded,
        // Delivery records and send guards are checked by the delivery tests; here the
        // nodes and command records are.
        items: store
            .items()
            .unwrap()
            .into_iter()
            .filter(|i| !lifecycle::delivery::is_machinery(i))
            .collect(),
        writes: journal.writes(),
        calls: recorder.calls(),
        elapsed: clock.elapsed(),
        sleeps: clock.sleeps(),
    }
}

fn is_command_item(item: &Map<String, Value>) -> bool {
    item.get("ItemType").and_then(Value::as_str) == Some("command")
}

fn check(name: &str, row: Row) {
    let run = run(&row);
    let e = &row.expect;
    let r = &run.report;
    let ctx = format!("\n--- row {name}: report ---\n{r:#?}");

    if e.initial != ANY {
        assert_eq!(r.initial_state, e.initial, "initial_state{ctx}");
    }
    if e.final_state != ANY {
        assert_eq!(r.final_state, e.final_state, "final_state{ctx}");
    }
    assert_eq!(r.passed_states, e.passed, "passed_states{ctx}");
    assert_eq!(r.tasks, e.tasks, "tasks{ctx}");
    assert_eq!(r.stopped_by.as_str(), e.stopped_by, "stopped_by{ctx}");
    match (e.error, &r.error) {
        (None, None) => {}
        (Some(want), Some(got)) => assert!(
            got.contains(want),
            "error should contain {want:?}, is {got:?}{ctx}"
        ),
        (want, got) => panic!("error: expected {want:?}, got {got:?}{ctx}"),
    }
    assert_eq!(exit_code(r), e.exit, "exit code{ctx}");
    let errors: Vec<(&str, Option<&str>, bool)> = r
        .errors
        .iter()
        .map(|x| (x.trigger.as_str(), x.task.as_deref(), x.ignored))
        .collect();
    assert_eq!(errors, e.errors, "reported errors{ctx}");
    if let Some(calls) = e.calls {
        assert_eq!(run.operations(), calls, "AWS calls{ctx}");
    }

    match e.store {
        StoreCheck::Auto => match &r.node {
            Some(id) => {
                assert_eq!(
                    run.status(id),
                    Some(r.final_state.as_str()),
                    "stored ItemStatus of {id} is not the final state{ctx}"
                );
                // Deferred writes (SPEC 9): each write goes from the state written last to a
                // later passed state — states between which no side effect whose repetition
                // matters ran are never written on their own — and the last is the final state.
                let mut from = r.initial_state.as_str();
                let mut passed = r.passed_states.iter();
                for (wid, expected, new) in &run.writes {
                    assert_eq!(
                        (wid, expected.as_str()),
                        (id, from),
                        "status writes chain{ctx}"
                    );
                    assert!(
                        passed.any(|p| p == new),
                        "a write to {new:?}, not a later passed state{ctx}"
                    );
                    from = new;
                }
                assert_eq!(from, r.final_state, "the last status write{ctx}");
            }
            None => {
                assert_eq!(run.writes, Vec::<Write>::new(), "status writes{ctx}");
                let nodes = |items: &[Map<String, Value>]| -> Vec<Map<String, Value>> {
                    items
                        .iter()
                        .filter(|i| !is_command_item(i))
                        .cloned()
                        .collect()
                };
                assert_eq!(nodes(&run.items), nodes(&run.seeded), "node items{ctx}");
            }
        },
        StoreCheck::Unchanged => {
            // The event's delivery entry on the node (SPEC 9) is the only trace it leaves.
            let without_entries = |items: &[Map<String, Value>]| -> Vec<Map<String, Value>> {
                items
                    .iter()
                    .map(|i| {
                        let mut i = i.clone();
                        i.retain(|k, _| !lifecycle::delivery::is_internal(k));
                        i
                    })
                    .filter(|i| i.len() > 1 || !i.contains_key("Ident"))
                    .collect()
            };
            assert_eq!(
                without_entries(&run.items),
                without_entries(&run.seeded),
                "store items{ctx}"
            );
            assert_eq!(run.writes, Vec::<Write>::new(), "status writes{ctx}");
        }
        StoreCheck::Custom => {}
    }
    if let Some(f) = e.check {
        f(&run);
    }
}

/// One `#[test]` per row, so that every row reports on its own.
macro_rules! table {
    ($( $(#[$meta:meta])* $name:ident: $row:expr; )+) => {$(
        $(#[$meta])*
        #[test]
        fn $name() {
            check(stringify!($name), $row);
        }
    )+};
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

/// Checks of a trigger (SPEC 4.2 step 2): the outcomes come from the rows.
const GATES: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - name: drain
        prepare: [t_ok_prepare]
        conditions: [c_ready, c_healthy]
        unless: [c_busy, c_paused]
        before: [t_ok_before]
        after: [t_ok_after]
  - source: ready
    dest: leaving
    triggers:
      - {name: leave, after: [t_ok_leave]}
";
const GATES_PASS: &[(&str, Outcome)] = &[
    ("c_ready", True),
    ("c_healthy", True),
    ("c_busy", False),
    ("c_paused", False),
];

/// A single check that does not pass: no trigger changes the state.
const SINGLE_GATE: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, prepare: [t_ok_prepare], conditions: [c_false_ready]}
";

/// Trigger order: `beta` appears before `alpha` in the file (in an unrelated transition), so
/// from `ready` `beta` is tried first although its transition comes later.
const ORDER: &str = r"
transitions:
  - source: elsewhere
    dest: somewhere
    triggers: [{name: beta}, {name: alpha}]
  - source: ready
    dest: via_alpha
    triggers: [{name: alpha, prepare: [t_ok_alpha]}]
  - source: ready
    dest: via_beta
    triggers: [{name: beta, prepare: [t_ok_beta], conditions: [c_beta]}]
";

/// One trigger name in several transitions fires from each of their sources.
const SAME_NAME: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers: [{name: step, after: [t_ok_first]}]
  - source: draining
    dest: drained
    triggers: [{name: step, after: [t_ok_second]}]
";

const INTERNAL: &str = r"
transitions:
  - source: ready
    dest: null
    triggers:
      - {name: note, before: [t_ok_note_before], after: [t_ok_note_after]}
  - source: ready
    dest: draining
    triggers:
      - {name: drain, after: [t_ok_drain]}
";

const INTERNAL_ONLY: &str = r"
transitions:
  - source: ready
    dest: null
    triggers:
      - {name: note, after: [t_ok_note]}
      - {name: note_again, conditions: [c_false_again], after: [t_ok_note_again]}
";

const STOP_AFTER_STATE_CHANGE: &str = r"
transitions:
  - source: ready
    dest: draining
    stop_after_state_change: true
    triggers:
      - {name: drain, before: [t_ok_before], after: [t_ok_after_not_reached]}
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish_not_reached]}
";

const STOP_AFTER_TRIGGER: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, stop_after_trigger: true, before: [t_ok_before], after: [t_ok_after_1, t_ok_after_2]}
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish_not_reached]}
";

/// An `ignore_errors` trigger whose transition also has `stop_after_state_change`: a forced
/// entry must not apply it (SPEC 4.3).
const IGNORE: &str = r"
transitions:
  - source: ready
    dest: draining
    stop_after_state_change: true
    triggers:
      - name: drain
        ignore_errors: true
        prepare: [t_prepare]
        conditions: [c_check]
        unless: [c_veto]
        before: [t_before_1, t_before_2]
        after: [t_after]
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish]}
";
const IGNORE_PASS: &[(&str, Outcome)] = &[
    ("t_prepare", Pass),
    ("c_check", True),
    ("c_veto", False),
    ("t_before_1", Pass),
    ("t_before_2", Pass),
    ("t_after", Pass),
];

const IGNORE_AFTER: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, ignore_errors: true, after: [t_err_after, t_ok_after_not_reached]}
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish]}
";

const IGNORE_INTERNAL: &str = r"
transitions:
  - source: ready
    dest: null
    triggers:
      - {name: note, ignore_errors: true, before: [t_err_note, t_ok_note_not_reached]}
  - source: ready
    dest: draining
    triggers:
      - {name: drain, after: [t_ok_drain]}
";

/// Errors without `ignore_errors`, and nothing that handles `failure`.
const FAIL: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, prepare: [t_drain_prepare], conditions: [c_drain], before: [t_drain], after: [t_drain_after]}
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish]}
";
const FAIL_PASS: &[(&str, Outcome)] = &[
    ("t_drain_prepare", Pass),
    ("c_drain", True),
    ("t_drain", Pass),
    ("t_drain_after", Pass),
];

/// A `failure` trigger without `ignore_errors` cannot pass the implicit success condition.
const FAIL_BLOCKED: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_err_drain]}
  - source: failure
    dest: recovered
    triggers:
      - {name: recover, prepare: [t_ok_recover_prepare], after: [t_ok_recover_not_reached]}
";

/// `is_successful` is false once the event is marked failed.
const FAIL_MARKED: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_err_drain]}
  - source: failure
    dest: recovered
    triggers:
      - {name: recover, ignore_errors: true, conditions: [is_successful], after: [t_ok_recover_not_reached]}
";

/// Failure handled by an `ignore_errors` chain, then a strict trigger that cannot fire.
const FAIL_CHAIN: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_err_drain]}
  - source: failure
    dest: cleaned_up
    triggers:
      - {name: cleanup, ignore_errors: true, conditions: [is_lifecycle], before: [t_cleanup], after: [t_ok_cleanup_after]}
  - source: cleaned_up
    dest: done
    triggers:
      - {name: finish, prepare: [t_finish_prepare], after: [t_ok_finish_not_reached]}
";
const FAIL_CHAIN_PASS: &[(&str, Outcome)] = &[("t_cleanup", Pass), ("t_finish_prepare", Pass)];

/// An error in a `failure` trigger without `ignore_errors` (its `prepare` runs before the
/// implicit condition).
const FAIL_IN_FAILURE: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_err_drain]}
  - source: failure
    dest: recovered
    triggers:
      - {name: recover, prepare: [t_err_recover_prepare], after: [t_ok_recover_not_reached]}
";

const CYCLE: &str = r"
transitions:
  - source: ready
    dest: updating
    triggers:
      - {name: update, after: [t_ok_update]}
  - source: updating
    dest: ready
    triggers:
      - {name: updated, before: [t_ok_updated]}
";

/// The way back to the start is a forced entry (`ignore_errors`).
const CYCLE_FORCED: &str = r"
transitions:
  - source: a
    dest: b
    triggers: [{name: ab}]
  - source: b
    dest: c
    triggers: [{name: bc}]
  - source: c
    dest: a
    triggers: [{name: ca, ignore_errors: true, before: [t_err_ca]}]
";

/// Re-enters `c`, passed earlier in the same event (not the start), through a transition
/// with two sources (destinations are unique, SPEC 3).
const CYCLE_PASSED: &str = r"
transitions:
  - source: a
    dest: b
    triggers: [{name: ab}]
  - source: [b, d]
    dest: c
    triggers: [{name: to_c, before: [t_ok_to_c]}]
  - source: c
    dest: d
    triggers: [{name: cd}]
";

/// A worker's launch: join through an SSM command, complete the hook on its success,
/// abandon on failure; termination completes and forgets.
const WORKER: &str = r"
initial_state: finished_cloud_init
transitions:
  - source: finished_cloud_init
    dest: joining
    stop_after_state_change: true
    triggers:
      - {name: join, conditions: [is_launching], before: [t_send_join]}
  - source: joining
    dest: ready
    triggers:
      - name: joined
        prepare: [t_ok_joined_prepare]
        conditions: [is_command, is_launching, is_lifecycle]
        after: [complete_lifecycle_action]
  - source: failure
    dest: abandoned
    triggers:
      - {name: abandon, ignore_errors: true, after: [complete_lifecycle_action]}
  - source: ready
    dest: removed
    triggers:
      - {name: leave, conditions: [is_terminating], after: [complete_lifecycle_action]}
";
const WORKER_PASS: &[(&str, Outcome)] = &[("t_send_join", Pass)];

/// A failed command and a trigger with `ignore_errors` (which skips the implicit success
/// condition).
const COMMAND_IGNORE: &str = r"
transitions:
  - source: joining
    dest: ready
    triggers:
      - {name: joined, ignore_errors: true, conditions: [is_command], after: [complete_lifecycle_action]}
";

/// A failed command and a `failure` trigger without `ignore_errors`.
const COMMAND_STRICT: &str = r"
transitions:
  - source: joining
    dest: ready
    triggers:
      - {name: joined, after: [complete_lifecycle_action]}
  - source: failure
    dest: abandoned
    triggers:
      - {name: abandon, prepare: [t_ok_abandon_prepare], after: [complete_lifecycle_action]}
";

/// Commands sent on behalf of events without lifecycle data.
const COMMAND_PLAIN: &str = r"
transitions:
  - source: ready
    dest: rebalanced
    triggers:
      - {name: rebalance, conditions: [is_command], unless: [is_lifecycle, is_launching], after: [t_ok_rebalance]}
  - source: backup
    dest: backed_up
    triggers:
      - {name: snapshot, conditions: [is_command, is_successful], after: [t_ok_snapshot]}
";

const SCHEDULED: &str = r"
transitions:
  - source: backup
    dest: backed_up
    triggers:
      - {name: snapshot, conditions: [is_scheduled], unless: [is_lifecycle, is_command], after: [t_ok_snapshot]}
  - source: backed_up
    dest: reported
    triggers:
      - {name: report, after: [t_ok_report]}
";

const WARM_POOL: &str = r"
initial_state: finished_cloud_init
transitions:
  - source: finished_cloud_init
    dest: warmed
    triggers:
      - {name: warm, conditions: [is_warm_pool_entry]}
  - source: warmed
    dest: resumed
    triggers:
      - {name: resume, conditions: [is_from_warm_pool], after: [t_ok_resume]}
";

/// The initial state is `new`: a node that is not in the table starts there.
const FROM_NEW: &str = r"
transitions:
  - source: new
    dest: registered
    triggers:
      - {name: register, conditions: [is_launching], after: [t_ok_register]}
";

/// A command sent during a termination, answered while the node reads as new.
const TERMINATING_COMMAND: &str = r"
initial_state: finished_cloud_init
transitions:
  - source: finished_cloud_init
    dest: joined
    triggers: [{name: join}]
  - source: pending
    dest: drained
    triggers:
      - {name: drain_pending, conditions: [is_terminating], after: [t_ok_drained]}
";

const REMOVE: &str = r"
transitions:
  - source: ready
    dest: leaving
    triggers:
      - {name: leave, after: [complete_lifecycle_action, remove_from_db]}
  - source: leaving
    dest: forgotten
    triggers:
      - {name: forget, after: [t_ok_forget]}
  - source: forgotten
    dest: reported
    triggers:
      - {name: report, before: [t_ok_report]}
";

const CONFLICT: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_ok_before, t_steal], after: [t_ok_after_not_reached]}
  - source: draining
    dest: drained
    triggers:
      - {name: finish, after: [t_ok_finish_not_reached]}
  - source: failure
    dest: abandoned
    triggers:
      - {name: abandon, ignore_errors: true, after: [t_ok_abandon_not_reached]}
";

const CONFLICT_ON_FAILURE: &str = r"
transitions:
  - source: ready
    dest: draining
    triggers:
      - {name: drain, before: [t_steal, t_err_after_steal]}
  - source: failure
    dest: abandoned
    triggers:
      - {name: abandon, ignore_errors: true, after: [t_ok_abandon_not_reached]}
";

// ---------------------------------------------------------------------------------------------
// Extra checks
// ---------------------------------------------------------------------------------------------

fn record_consumed(run: &Run) {
    assert!(
        !run.items.iter().any(is_command_item),
        "the command record must be taken (read and deleted): {:?}",
        run.items
    );
}

fn renamed_from_launch_record(run: &Run) {
    record_consumed(run);
    assert_eq!(run.report.event.as_deref(), Some(LAUNCH));
    assert_eq!(run.report.node.as_deref(), Some("i-1"));
    assert_eq!(
        run.status("i-other"),
        Some("elsewhere"),
        "the instance in the SSM event's resources must not be touched"
    );
}

fn failed_command_reported(run: &Run) {
    record_consumed(run);
    assert_eq!(run.report.errors[0].message, "command was not successful");
}

fn renamed_rebalance(run: &Run) {
    record_consumed(run);
    assert_eq!(run.report.event.as_deref(), Some("rebalance"));
    assert_eq!(run.report.node.as_deref(), Some("i-2"));
}

fn renamed_backup_without_node(run: &Run) {
    record_consumed(run);
    assert_eq!(run.report.event.as_deref(), Some("backup"));
    assert_eq!(run.report.node, None);
}

fn unknown_command_not_ours(run: &Run) {
    let reason = run.report.not_supported.as_deref().unwrap_or_default();
    assert!(reason.contains("cmd-unknown"), "not_supported: {reason:?}");
}

fn waited_full_timeout(run: &Run) {
    assert_eq!(run.elapsed, Duration::from_secs(30), "waited on the clock");
    let ops = run.operations();
    assert!(
        ops.iter().any(|o| o == "RecordLifecycleActionHeartbeat"),
        "a lifecycle action that waits is kept alive with heartbeats: {ops:?}"
    );
    assert!(!ops.iter().any(|o| o.starts_with("CompleteLifecycleAction")));
}

fn waited_until_deadline(run: &Run) {
    assert_eq!(
        run.elapsed,
        Duration::from_secs(12),
        "bounded by the deadline"
    );
}

fn waited_fifteen_seconds(run: &Run) {
    assert_eq!(run.elapsed, Duration::from_secs(15));
}

fn waited_ten_seconds(run: &Run) {
    assert_eq!(run.elapsed, Duration::from_secs(10));
}

fn never_waited(run: &Run) {
    assert_eq!(run.sleeps, 0, "a terminating event never waits");
    assert_eq!(run.elapsed, Duration::ZERO);
}

fn command_wait_timed_out(run: &Run) {
    assert_eq!(run.elapsed, Duration::from_secs(30));
    assert_eq!(run.status("i-1"), Some("pending"));
    assert!(run.writes.is_empty());
}

fn removed_and_not_recreated(run: &Run) {
    let tombstone = run.item("i-1").expect("a tombstone in place of the node");
    assert_eq!(
        tombstone.get("Removed"),
        Some(&Value::Bool(true)),
        "{tombstone:?}"
    );
    assert!(
        tombstone.get("ItemStatus").is_none(),
        "nothing recreated: {tombstone:?}"
    );
    assert_eq!(run.items.len(), 1, "nothing recreated: {:?}", run.items);
    // `leaving` was never written on its own: `remove_from_db` may run again (a tombstone
    // again), so no write is owed before it (SPEC 9).
    assert_eq!(run.writes, []);
}

fn created_by_first_write(run: &Run) {
    let item = run
        .item("i-9")
        .expect("the first state write creates the item");
    assert_eq!(item.get("ItemStatus"), Some(&Value::from("registered")));
}

fn conflict_names_status(run: &Run) {
    assert_eq!(run.report.conflict.as_deref(), Some(STOLEN));
    assert_eq!(run.status("i-1"), Some(STOLEN), "the winner's status stays");
    assert_eq!(
        run.writes,
        [write("i-1", "ready", STOLEN)],
        "only the other invocation wrote"
    );
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

table! {
    // --- 4.2 step 2: conditions and unless -----------------------------------------------------

    all_checks_pass_trigger_fires:
        Row::new(GATES, terminate("i-1")).node("i-1", "ready").outcomes(GATES_PASS)
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_ok_prepare", "c_ready", "c_healthy", "c_busy", "c_paused", "t_ok_before", "t_ok_after"],
            ..EXPECT
        });

    false_condition_skips_trigger_after_prepare_and_next_trigger_runs:
        Row::new(GATES, terminate("i-1")).node("i-1", "ready").outcomes(GATES_PASS)
        .outcome("c_healthy", False)
        .expecting(Expect {
            initial: "ready", final_state: "leaving", passed: &["leaving"],
            tasks: &["t_ok_prepare", "c_ready", "c_healthy", "t_ok_leave"],
            ..EXPECT
        });

    checks_stop_at_first_false_condition:
        Row::new(GATES, terminate("i-1")).node("i-1", "ready").outcomes(GATES_PASS)
        .outcome("c_ready", False)
        .expecting(Expect {
            initial: "ready", final_state: "leaving", passed: &["leaving"],
            tasks: &["t_ok_prepare", "c_ready", "t_ok_leave"],
            ..EXPECT
        });

    true_unless_skips_trigger:
        Row::new(GATES, terminate("i-1")).node("i-1", "ready").outcomes(GATES_PASS)
        .outcome("c_busy", True)
        .expecting(Expect {
            initial: "ready", final_state: "leaving", passed: &["leaving"],
            tasks: &["t_ok_prepare", "c_ready", "c_healthy", "c_busy", "t_ok_leave"],
            ..EXPECT
        });

    second_unless_true_skips_trigger:
        Row::new(GATES, terminate("i-1")).node("i-1", "ready").outcomes(GATES_PASS)
        .outcome("c_paused", True)
        .expecting(Expect {
            initial: "ready", final_state: "leaving", passed: &["leaving"],
            tasks: &["t_ok_prepare", "c_ready", "c_healthy", "c_busy", "c_paused", "t_ok_leave"],
            ..EXPECT
        });

    no_trigger_fires_stops_with_no_state_change:
        Row::new(SINGLE_GATE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "ready",
            tasks: &["t_ok_prepare", "c_false_ready"],
            stopped_by: "no_state_change",
            ..EXPECT
        });

    // --- 4.2: trigger order ---------------------------------------------------------------------

    trigger_order_is_first_appearance_in_the_whole_config:
        Row::new(ORDER, terminate("i-1")).node("i-1", "ready").outcome("c_beta", True)
        .expecting(Expect {
            initial: "ready", final_state: "via_beta", passed: &["via_beta"],
            tasks: &["t_ok_beta", "c_beta"],
            ..EXPECT
        });

    trigger_order_falls_through_to_later_name:
        Row::new(ORDER, terminate("i-1")).node("i-1", "ready").outcome("c_beta", False)
        .expecting(Expect {
            initial: "ready", final_state: "via_alpha", passed: &["via_alpha"],
            tasks: &["t_ok_beta", "c_beta", "t_ok_alpha"],
            ..EXPECT
        });

    same_trigger_name_fires_from_each_source:
        Row::new(SAME_NAME, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_ok_first", "t_ok_second"],
            ..EXPECT
        });

    // --- 4.2: internal transitions, stop flags ---------------------------------------------

    internal_transition_keeps_state_and_loop_continues:
        Row::new(INTERNAL, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_ok_note_before", "t_ok_note_after", "t_ok_drain"],
            ..EXPECT
        });

    internal_transitions_only_stop_with_no_state_change:
        Row::new(INTERNAL_ONLY, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "ready",
            tasks: &["t_ok_note", "c_false_again"],
            stopped_by: "no_state_change",
            ..EXPECT
        });

    stop_after_state_change_skips_after_tasks:
        Row::new(STOP_AFTER_STATE_CHANGE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_ok_before"],
            stopped_by: "stop_after_state_change",
            ..EXPECT
        });

    stop_after_trigger_stops_after_the_after_tasks:
        Row::new(STOP_AFTER_TRIGGER, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_ok_before", "t_ok_after_1", "t_ok_after_2"],
            stopped_by: "stop_after_trigger",
            ..EXPECT
        });

    // --- 4.3: ignore_errors -----------------------------------------------------------------

    ignore_errors_control_row_without_error_stops_after_state_change:
        Row::new(IGNORE, terminate("i-1")).node("i-1", "ready").outcomes(IGNORE_PASS)
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_prepare", "c_check", "c_veto", "t_before_1", "t_before_2"],
            stopped_by: "stop_after_state_change",
            ..EXPECT
        });

    ignore_errors_in_prepare_forces_destination_and_continues:
        Row::new(IGNORE, terminate("i-1")).node("i-1", "ready").outcomes(IGNORE_PASS)
        .outcome("t_prepare", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_prepare", "t_ok_finish"],
            errors: &[("drain", Some("t_prepare"), true)],
            ..EXPECT
        });

    ignore_errors_in_condition_forces_destination_and_continues:
        Row::new(IGNORE, terminate("i-1")).node("i-1", "ready").outcomes(IGNORE_PASS)
        .outcome("c_check", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_prepare", "c_check", "t_ok_finish"],
            errors: &[("drain", Some("c_check"), true)],
            ..EXPECT
        });

    ignore_errors_in_unless_forces_destination_and_continues:
        Row::new(IGNORE, terminate("i-1")).node("i-1", "ready").outcomes(IGNORE_PASS)
        .outcome("c_veto", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_prepare", "c_check", "c_veto", "t_ok_finish"],
            errors: &[("drain", Some("c_veto"), true)],
            ..EXPECT
        });

    ignore_errors_in_before_forces_destination_and_continues:
        Row::new(IGNORE, terminate("i-1")).node("i-1", "ready").outcomes(IGNORE_PASS)
        .outcome("t_before_1", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_prepare", "c_check", "c_veto", "t_before_1", "t_ok_finish"],
            errors: &[("drain", Some("t_before_1"), true)],
            ..EXPECT
        });

    ignore_errors_in_after_continues_from_the_new_state:
        Row::new(IGNORE_AFTER, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "drained", passed: &["draining", "drained"],
            tasks: &["t_err_after", "t_ok_finish"],
            errors: &[("drain", Some("t_err_after"), true)],
            ..EXPECT
        });

    ignore_errors_in_internal_transition_keeps_state_and_continues:
        Row::new(IGNORE_INTERNAL, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "draining", passed: &["draining"],
            tasks: &["t_err_note", "t_ok_drain"],
            errors: &[("note", Some("t_err_note"), true)],
            ..EXPECT
        });

    // --- 4.3: errors and failure handling ------------------------------------------------

    error_in_prepare_enters_failure_unhandled:
        Row::new(FAIL, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_PASS)
        .outcome("t_drain_prepare", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_drain_prepare"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("t_drain_prepare"), false)],
            ..EXPECT
        });

    error_in_condition_enters_failure_unhandled:
        Row::new(FAIL, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_PASS)
        .outcome("c_drain", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_drain_prepare", "c_drain"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("c_drain"), false)],
            ..EXPECT
        });

    error_in_before_enters_failure_unhandled:
        Row::new(FAIL, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_PASS)
        .outcome("t_drain", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_drain_prepare", "c_drain", "t_drain"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("t_drain"), false)],
            ..EXPECT
        });

    error_in_after_enters_failure_from_the_new_state:
        Row::new(FAIL, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_PASS)
        .outcome("t_drain_after", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["draining", "failure"],
            tasks: &["t_drain_prepare", "c_drain", "t_drain", "t_drain_after"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("t_drain_after"), false)],
            ..EXPECT
        });

    failure_trigger_without_ignore_errors_cannot_fire:
        Row::new(FAIL_BLOCKED, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_err_drain", "t_ok_recover_prepare"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("t_err_drain"), false)],
            ..EXPECT
        });

    event_marked_failed_is_not_successful:
        Row::new(FAIL_MARKED, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_err_drain", "is_successful"],
            stopped_by: "failure_unhandled",
            errors: &[("drain", Some("t_err_drain"), false)],
            ..EXPECT
        });

    failure_chain_with_ignore_errors_leaves_failure:
        Row::new(FAIL_CHAIN, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_CHAIN_PASS)
        .expecting(Expect {
            initial: "ready", final_state: "cleaned_up", passed: &["failure", "cleaned_up"],
            tasks: &["t_err_drain", "is_lifecycle", "t_cleanup", "t_ok_cleanup_after", "t_finish_prepare"],
            stopped_by: "no_state_change",
            errors: &[("drain", Some("t_err_drain"), false)],
            ..EXPECT
        });

    ignored_error_in_failure_handling_forces_destination:
        Row::new(FAIL_CHAIN, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_CHAIN_PASS)
        .outcome("t_cleanup", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "cleaned_up", passed: &["failure", "cleaned_up"],
            tasks: &["t_err_drain", "is_lifecycle", "t_cleanup", "t_finish_prepare"],
            stopped_by: "no_state_change",
            errors: &[("drain", Some("t_err_drain"), false), ("cleanup", Some("t_cleanup"), true)],
            ..EXPECT
        });

    error_in_failure_handling_ends_invocation_state_stays:
        Row::new(FAIL_IN_FAILURE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "failure", passed: &["failure"],
            tasks: &["t_err_drain", "t_err_recover_prepare"],
            stopped_by: "error",
            error: Some("t_err_recover_prepare failed during failure handling"),
            exit: 1,
            errors: &[("drain", Some("t_err_drain"), false)],
            ..EXPECT
        });

    error_after_leaving_failure_still_ends_invocation:
        Row::new(FAIL_CHAIN, terminate("i-1")).node("i-1", "ready").outcomes(FAIL_CHAIN_PASS)
        .outcome("t_finish_prepare", Fail)
        .expecting(Expect {
            initial: "ready", final_state: "cleaned_up", passed: &["failure", "cleaned_up"],
            tasks: &["t_err_drain", "is_lifecycle", "t_cleanup", "t_ok_cleanup_after", "t_finish_prepare"],
            stopped_by: "error",
            error: Some("t_finish_prepare"),
            exit: 1,
            errors: &[("drain", Some("t_err_drain"), false)],
            ..EXPECT
        });

    // --- 4.3: one event never loops -------------------------------------------------------

    cycle_back_to_the_starting_state_is_an_error:
        Row::new(CYCLE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "updating", passed: &["updating"],
            tasks: &["t_ok_update", "t_ok_updated"],
            stopped_by: "error",
            error: Some("ready -> updating -> ready"),
            exit: 1,
            ..EXPECT
        });

    cycle_through_a_forced_entry_is_an_error:
        Row::new(CYCLE_FORCED, terminate("i-1")).node("i-1", "a")
        .expecting(Expect {
            initial: "a", final_state: "c", passed: &["b", "c"],
            tasks: &["t_err_ca"],
            stopped_by: "error",
            error: Some("a -> b -> c -> a"),
            exit: 1,
            errors: &[("ca", Some("t_err_ca"), true)],
            ..EXPECT
        });

    cycle_reentering_a_passed_state_is_an_error:
        Row::new(CYCLE_PASSED, terminate("i-1")).node("i-1", "a")
        .expecting(Expect {
            initial: "a", final_state: "d", passed: &["b", "c", "d"],
            tasks: &["t_ok_to_c", "t_ok_to_c"],
            stopped_by: "error",
            error: Some("a -> b -> c -> d -> c"),
            exit: 1,
            ..EXPECT
        });

    // --- 4.1.1, 4.2 step 2, 2.5: command events ---------------------------------------------

    command_success_resumes_the_launch_that_sent_it:
        Row::new(WORKER, command_on("cmd-1", "Success", "i-other")).outcomes(WORKER_PASS)
        .node("i-1", "joining").node("i-other", "elsewhere")
        .record("cmd-1", &launch("i-1"), "i-1")
        .expecting(Expect {
            initial: "joining", final_state: "ready", passed: &["ready"],
            tasks: &["t_ok_joined_prepare", "is_command", "is_launching", "is_lifecycle",
                     "complete_lifecycle_action", "is_terminating"],
            stopped_by: "no_state_change",
            calls: Some(&["CompleteLifecycleAction:CONTINUE", "DescribeScalingActivities"]),
            check: Some(renamed_from_launch_record),
            ..EXPECT
        });

    failed_command_enters_failure_and_abandons_the_launch:
        Row::new(WORKER, command_on("cmd-1", "Failed", "i-1")).outcomes(WORKER_PASS)
        .node("i-1", "joining")
        .record("cmd-1", &launch("i-1"), "i-1")
        .expecting(Expect {
            initial: "joining", final_state: "abandoned", passed: &["failure", "abandoned"],
            tasks: &["t_ok_joined_prepare", "complete_lifecycle_action"],
            errors: &[("joined", None, false)],
            calls: Some(&["CompleteLifecycleAction:ABANDON"]),
            check: Some(failed_command_reported),
            ..EXPECT
        });

    failed_command_passes_trigger_with_ignore_errors:
        Row::new(COMMAND_IGNORE, command_on("cmd-1", "TimedOut", "i-1"))
        .node("i-1", "joining")
        .record("cmd-1", &launch("i-1"), "i-1")
        .expecting(Expect {
            initial: "joining", final_state: "ready", passed: &["ready"],
            tasks: &["is_command", "complete_lifecycle_action"],
            calls: Some(&["CompleteLifecycleAction:ABANDON"]),
            check: Some(record_consumed),
            ..EXPECT
        });

    failed_command_in_failure_handling_ends_invocation:
        Row::new(COMMAND_STRICT, command_on("cmd-1", "Failed", "i-1"))
        .node("i-1", "joining")
        .record("cmd-1", &launch("i-1"), "i-1")
        .expecting(Expect {
            initial: "joining", final_state: "failure", passed: &["failure"],
            tasks: &["t_ok_abandon_prepare"],
            stopped_by: "error",
            error: Some("command was not successful"),
            exit: 1,
            errors: &[("joined", None, false)],
            check: Some(record_consumed),
            ..EXPECT
        });

    command_without_lifecycle_data_loads_node_from_resources:
        Row::new(COMMAND_PLAIN, command_on("cmd-2", "Success", "i-2"))
        .node("i-2", "ready")
        .record("cmd-2", &scheduled("rebalance"), "i-2")
        .expecting(Expect {
            initial: "ready", final_state: "rebalanced", passed: &["rebalanced"],
            tasks: &["is_command", "is_lifecycle", "is_launching", "t_ok_rebalance"],
            check: Some(renamed_rebalance),
            ..EXPECT
        });

    command_without_node_runs_in_the_state_named_by_its_record:
        Row::new(COMMAND_PLAIN, command("cmd-3", "Success"))
        .node("i-2", "ready")
        .record("cmd-3", &scheduled("backup"), "i-2")
        .expecting(Expect {
            initial: "backup", final_state: "backed_up", passed: &["backed_up"],
            tasks: &["is_command", "is_successful", "t_ok_snapshot"],
            check: Some(renamed_backup_without_node),
            ..EXPECT
        });

    unknown_command_is_not_supported:
        Row::new(COMMAND_PLAIN, command_on("cmd-unknown", "Success", "i-2"))
        .node("i-2", "ready")
        .record("cmd-2", &scheduled("rebalance"), "i-2")
        .expecting(Expect {
            stopped_by: "not_supported",
            store: StoreCheck::Unchanged,
            check: Some(unknown_command_not_ours),
            ..EXPECT
        });

    // --- 4.1.3, 4.4: scheduled events ----------------------------------------------------

    scheduled_event_runs_without_node_and_persists_nothing:
        Row::new(SCHEDULED, scheduled("backup")).node("i-1", "ready").node("backup", "ready")
        .expecting(Expect {
            initial: "backup", final_state: "reported", passed: &["backed_up", "reported"],
            tasks: &["is_scheduled", "is_lifecycle", "is_command", "t_ok_snapshot", "t_ok_report"],
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    scheduled_event_of_unknown_rule_has_no_trigger:
        Row::new(SCHEDULED, scheduled("compact"))
        .expecting(Expect {
            initial: "compact", final_state: "compact",
            stopped_by: "error", error: Some("no trigger for state"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    // --- 4.1.5: guards ---------------------------------------------------------------------

    launch_of_new_node_in_initial_state_runs:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).node("i-1", "finished_cloud_init")
        .expecting(Expect {
            initial: "finished_cloud_init", final_state: "joining", passed: &["joining"],
            tasks: &["is_launching", "t_send_join"],
            stopped_by: "stop_after_state_change",
            ..EXPECT
        });

    launch_of_node_that_is_not_new_is_refused:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "ready",
            stopped_by: "error", error: Some("only new nodes can be launched"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    launch_from_warm_pool_of_node_that_is_not_new_runs:
        Row::new(WARM_POOL, launch_from_warm_pool("i-1")).node("i-1", "warmed")
        .expecting(Expect {
            initial: "warmed", final_state: "resumed", passed: &["resumed"],
            tasks: &["is_from_warm_pool", "t_ok_resume"],
            ..EXPECT
        });

    terminate_of_new_node_is_refused:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS).node("i-1", "finished_cloud_init")
        .expecting(Expect {
            initial: "finished_cloud_init", final_state: "finished_cloud_init",
            stopped_by: "error", error: Some("new nodes cannot terminate"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    terminate_of_node_not_in_table_is_refused_and_creates_nothing:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS)
        .expecting(Expect {
            initial: "new", final_state: "new",
            stopped_by: "error", error: Some("new nodes cannot terminate"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    state_without_trigger_is_an_error:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS).node("i-1", "abandoned")
        .expecting(Expect {
            initial: "abandoned", final_state: "abandoned",
            stopped_by: "error", error: Some("no trigger for state"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    state_unknown_to_the_config_is_an_error:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS).node("i-1", "mystery")
        .expecting(Expect {
            initial: "mystery", final_state: "mystery",
            stopped_by: "error", error: Some("no trigger for state"), exit: 1,
            store: StoreCheck::Unchanged,
            ..EXPECT
        });

    node_not_in_table_reads_as_new_and_first_write_creates_it:
        Row::new(FROM_NEW, launch("i-9"))
        .expecting(Expect {
            initial: "new", final_state: "registered", passed: &["registered"],
            tasks: &["is_launching", "t_ok_register"],
            check: Some(created_by_first_write),
            ..EXPECT
        });

    // --- 4.1.4: waiting for cloud-init ---------------------------------------------------------

    launch_waiting_for_cloud_init_times_out:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).node("i-1", "pending").wait(30, 5)
        .expecting(Expect {
            initial: ANY, final_state: ANY,
            stopped_by: "error", error: Some("cloud-init not finished"), exit: 1,
            calls: None,
            store: StoreCheck::Unchanged,
            check: Some(waited_full_timeout),
            ..EXPECT
        });

    // SPEC 8: the deadline ends the wait as `stopped_by: deadline`, retryable, nothing changed.
    launch_wait_is_bounded_by_the_deadline:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).node("i-1", "pending")
        .wait(600, 5).deadline(12)
        .expecting(Expect {
            initial: ANY, final_state: ANY,
            stopped_by: "deadline", error: Some("the deadline came while waiting for node i-1"), exit: 1,
            calls: None,
            store: StoreCheck::Unchanged,
            check: Some(waited_until_deadline),
            ..EXPECT
        });

    launch_resumes_once_cloud_init_finished:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).node("i-1", "pending").wait(30, 5)
        .cloud_init(3, node("i-1", "finished_cloud_init"))
        .expecting(Expect {
            initial: "finished_cloud_init", final_state: "joining", passed: &["joining"],
            tasks: &["is_launching", "t_send_join"],
            stopped_by: "stop_after_state_change",
            calls: None,
            check: Some(waited_fifteen_seconds),
            ..EXPECT
        });

    launch_of_unregistered_node_waits_for_it:
        Row::new(WORKER, launch("i-1")).outcomes(WORKER_PASS).wait(30, 5)
        .cloud_init(2, node("i-1", "finished_cloud_init"))
        .expecting(Expect {
            initial: "finished_cloud_init", final_state: "joining", passed: &["joining"],
            tasks: &["is_launching", "t_send_join"],
            stopped_by: "stop_after_state_change",
            calls: None,
            check: Some(waited_ten_seconds),
            ..EXPECT
        });

    command_event_waits_for_cloud_init_too:
        Row::new(WORKER, command_on("cmd-1", "Success", "i-1")).outcomes(WORKER_PASS)
        .node("i-1", "pending").record("cmd-1", &launch("i-1"), "i-1").wait(30, 5)
        .expecting(Expect {
            initial: ANY, final_state: ANY,
            stopped_by: "error", error: Some("cloud-init not finished"), exit: 1,
            calls: None,
            store: StoreCheck::Custom,
            check: Some(command_wait_timed_out),
            ..EXPECT
        });

    terminate_never_waits:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS).node("i-1", "pending").wait(30, 5)
        .expecting(Expect {
            initial: "pending", final_state: "pending",
            stopped_by: "error", error: Some("new nodes cannot terminate"), exit: 1,
            store: StoreCheck::Unchanged,
            check: Some(never_waited),
            ..EXPECT
        });

    command_event_resuming_a_termination_never_waits:
        Row::new(TERMINATING_COMMAND, command_on("cmd-7", "Success", "i-1"))
        .node("i-1", "pending").record("cmd-7", &terminate("i-1"), "i-1").wait(30, 5)
        .expecting(Expect {
            initial: "pending", final_state: "drained", passed: &["drained"],
            tasks: &["is_terminating", "t_ok_drained"],
            check: Some(never_waited),
            ..EXPECT
        });

    // --- 4.4: persistence ------------------------------------------------------------------

    remove_from_db_then_later_states_stay_in_memory:
        Row::new(REMOVE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "reported", passed: &["leaving", "forgotten", "reported"],
            tasks: &["complete_lifecycle_action", "remove_from_db", "t_ok_forget", "t_ok_report"],
            calls: Some(&["CompleteLifecycleAction:CONTINUE"]),
            store: StoreCheck::Custom,
            check: Some(removed_and_not_recreated),
            ..EXPECT
        });

    conflict_stops_at_once_and_names_the_status_found:
        Row::new(CONFLICT, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "ready",
            tasks: &["t_ok_before", "t_steal"],
            stopped_by: "conflict",
            store: StoreCheck::Custom,
            check: Some(conflict_names_status),
            ..EXPECT
        });

    conflict_entering_failure_stops_at_once:
        Row::new(CONFLICT_ON_FAILURE, terminate("i-1")).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "ready",
            tasks: &["t_steal", "t_err_after_steal"],
            stopped_by: "conflict",
            errors: &[("drain", Some("t_err_after_steal"), false)],
            store: StoreCheck::Custom,
            check: Some(conflict_names_status),
            ..EXPECT
        });

    // --- 2.3: lifecycle result ---------------------------------------------------------------

    failed_launch_completes_with_abandon_in_failure_handling:
        Row::new(WORKER, launch("i-1")).node("i-1", "finished_cloud_init")
        .outcome("t_send_join", Fail)
        .expecting(Expect {
            initial: "finished_cloud_init", final_state: "abandoned",
            passed: &["failure", "abandoned"],
            tasks: &["is_launching", "t_send_join", "complete_lifecycle_action"],
            errors: &[("join", Some("t_send_join"), false)],
            calls: Some(&["CompleteLifecycleAction:ABANDON"]),
            ..EXPECT
        });

    terminate_completes_with_continue:
        Row::new(WORKER, terminate("i-1")).outcomes(WORKER_PASS).node("i-1", "ready")
        .expecting(Expect {
            initial: "ready", final_state: "removed", passed: &["removed"],
            tasks: &["is_terminating", "complete_lifecycle_action"],
            calls: Some(&["CompleteLifecycleAction:CONTINUE"]),
            ..EXPECT
        });
}
