//! The sweep's decisions, row by row, and their invariants under any input.

use super::*;
use proptest::prelude::*;
use serde_json::json;

const NOW_SECS: u64 = 1_767_225_600;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn ago(secs: u64) -> SystemTime {
    now() - Duration::from_secs(secs)
}

fn def() -> Definition {
    Definition::from_yaml(
        r#"
transitions:
  - {source: finished_cloud_init, dest: starting, stop_after_state_change: true, triggers: [{name: start, conditions: [is_launching]}]}
  - {source: starting, dest: serving, triggers: [{name: started, conditions: [is_command]}]}
  - {source: serving, dest: draining, stop_after_state_change: true, triggers: [{name: drain, conditions: [is_terminating]}]}
  - {source: draining, dest: removed, triggers: [{name: drained, conditions: [is_command]}]}
  - {source: failure, dest: failed, triggers: [{name: give_up}]}
reconcile:
  rule: sweep
  groups: [g]
  stale_after_seconds: 600
  complete_after_seconds: 2700
  heartbeat_within_seconds: 900
  gone: remove
"#,
    )
    .unwrap()
}

fn spec(def: &Definition) -> ReconcileSpec {
    def.reconcile().unwrap().clone()
}

fn hooks() -> Vec<Hook> {
    vec![
        Hook {
            group: "g".into(),
            name: "up".into(),
            transition: LifecycleTransition::Launching,
            heartbeat_timeout: Some(Duration::from_secs(3600)),
            default_result: LifecycleResult::Abandon,
            metadata: Map::new(),
        },
        Hook {
            group: "g".into(),
            name: "down".into(),
            transition: LifecycleTransition::Terminating,
            heartbeat_timeout: Some(Duration::from_secs(3600)),
            default_result: LifecycleResult::Continue,
            metadata: Map::new(),
        },
    ]
}

/// A node `i-1` in `state`, changed `age` seconds ago (`None`: no `ChangedAt`).
fn node(state: &str, age: Option<u64>) -> NodeFacts {
    NodeFacts {
        id: "i-1".into(),
        state: state.into(),
        item_type: Some("worker".into()),
        changed_at: age.map(ago),
        lease: None,
        removed: false,
        pending: Vec::new(),
    }
}

fn with_command(mut n: NodeFacts, due_in: Option<u64>) -> NodeFacts {
    n.pending.push(PendingCommand {
        id: "cmd-1".into(),
        lifecycle: Some(LifecycleData {
            instance_id: n.id.clone(),
            auto_scaling_group: "g".into(),
            hook_name: "up".into(),
            token: Some("tok".into()),
            transition: LifecycleTransition::Launching,
            metadata: Map::new(),
            origin: None,
            destination: None,
            due_at: due_in.map(|d| NOW_SECS + d),
        }),
    });
    n
}

fn held(mut n: NodeFacts, for_secs: i64) -> NodeFacts {
    let until = if for_secs >= 0 {
        now() + Duration::from_secs(for_secs.unsigned_abs())
    } else {
        now() - Duration::from_secs(for_secs.unsigned_abs())
    };
    n.lease = Some(("other".into(), until));
    n
}

fn instance(state: &str) -> Observed {
    Observed {
        instances: vec![Instance {
            id: "i-1".into(),
            group: "g".into(),
            lifecycle_state: state.into(),
        }],
        looked_up: BTreeSet::new(),
        hooks: hooks(),
    }
}

fn gone() -> Observed {
    Observed {
        instances: Vec::new(),
        looked_up: ["i-1".to_owned()].into(),
        hooks: hooks(),
    }
}

/// (action, reason) of each finding, by name.
fn decide(n: NodeFacts, observed: &Observed) -> Vec<(&'static str, String)> {
    let def = def();
    plan(&def, &spec(&def), &[n], observed, now())
        .findings
        .iter()
        .map(|f| {
            let reason = serde_json::to_value(&f.reason).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned();
            (f.action.name(), reason)
        })
        .collect()
}

/// One row: what it shows, the node, what Auto Scaling says, the findings (action, reason).
type Row = (
    &'static str,
    NodeFacts,
    Observed,
    &'static [(&'static str, &'static str)],
);

#[test]
fn the_rules_row_by_row() {
    let p = PENDING_WAIT;
    let t = TERMINATING_WAIT;
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("a stale launch in the initial state is resumed", node("finished_cloud_init", Some(700)), instance(p), &[("resume", "stale")]),
        ("a launch in progress is left to its event", node("finished_cloud_init", Some(60)), instance(p), &[]),
        ("no ChangedAt: the age is unknown, counted from this sweep", node("finished_cloud_init", None), instance(p), &[("stamp", "age_unknown")]),
        ("a launch past the initial state would be refused", node("starting", Some(700)), instance(p), &[("leave_alone", "not_resumable")]),
        ("cloud-init not finished is not resumed", node("pending", Some(700)), instance(p), &[("leave_alone", "not_resumable")]),
        ("overdue: completed", node("starting", Some(3000)), instance(p), &[("complete", "overdue")]),
        ("overdue beats resumable", node("finished_cloud_init", Some(3000)), instance(p), &[("complete", "overdue")]),
        ("a command in flight, due soon: heartbeat", with_command(node("starting", Some(700)), Some(300)), instance(p), &[("heartbeat", "due_soon")]),
        ("a command in flight, due past: heartbeat", with_command(node("starting", Some(100)), Some(0)), instance(p), &[("heartbeat", "due_soon")]),
        ("a command in flight with time left", with_command(node("starting", Some(700)), Some(2000)), instance(p), &[("leave_alone", "in_flight")]),
        ("a command in flight, due unknown: heartbeat", with_command(node("starting", Some(700)), None), instance(p), &[("heartbeat", "due_unknown")]),
        ("a command in flight, no ChangedAt: heartbeat", with_command(node("starting", None), None), instance(p), &[("heartbeat", "due_unknown")]),
        ("a command in flight for too long: completed", with_command(node("starting", Some(3000)), Some(100)), instance(p), &[("complete", "overdue")]),
        ("held: left alone, even when overdue", held(node("starting", Some(3000)), 60), instance(p), &[("leave_alone", "held")]),
        ("a dead lease does not hold", held(node("finished_cloud_init", Some(700)), -60), instance(p), &[("resume", "stale")]),
        ("a stale termination is resumed", node("serving", Some(700)), instance(t), &[("resume", "stale")]),
        ("a new node's termination would be refused", node("finished_cloud_init", Some(700)), instance(t), &[("leave_alone", "not_resumable")]),
        ("no transition leaves the state", node("failed", Some(700)), instance(t), &[("leave_alone", "not_resumable")]),
        ("a state the configuration lacks", node("mystery", Some(700)), instance(t), &[("leave_alone", "not_resumable")]),
        ("failure in service: listed", node("failure", Some(9000)), instance("InService"), &[("list_failure", "failure")]),
        ("failure waiting on termination: listed and completed", node("failure", Some(3000)), instance(t), &[("list_failure", "failure"), ("complete", "overdue")]),
        ("failure waiting, stale: listed and resumed", node("failure", Some(700)), instance(t), &[("list_failure", "failure"), ("resume", "stale")]),
        ("in service and unchanged for long: fine", node("serving", Some(90_000)), instance("InService"), &[]),
        ("warm pools are left to their events", node("finished_cloud_init", Some(3000)), instance("Warmed:Pending:Wait"), &[]),
        ("gone: removed", node("serving", Some(3000)), gone(), &[("remove", "gone")]),
        ("gone, no ChangedAt: removed", node("serving", None), gone(), &[("remove", "gone")]),
        ("gone but changed recently: later", node("serving", Some(30)), gone(), &[("leave_alone", "gone_recently")]),
        ("gone and held: left alone", held(node("serving", Some(3000)), 60), gone(), &[("leave_alone", "held")]),
        ("gone in failure: listed and removed", node("failure", Some(3000)), gone(), &[("list_failure", "failure"), ("remove", "gone")]),
        ("not listed, lookup failed: nothing said", node("serving", Some(3000)), Observed { hooks: hooks(), ..Observed::default() }, &[]),
    ];
    for (what, n, observed, expected) in rows {
        let got = decide(n, &observed);
        let expected: Vec<(&str, String)> = expected
            .iter()
            .map(|(a, r)| (*a, (*r).to_owned()))
            .collect();
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn results_next_due_and_the_event_to_resume_with() {
    let def = def();
    let spec = spec(&def);
    let p = plan(
        &def,
        &spec,
        &[node("starting", Some(3000))],
        &instance(PENDING_WAIT),
        now(),
    );
    match &p.findings[0].action {
        Action::Complete { of, result } => {
            assert_eq!(*result, LifecycleResult::Abandon, "the hook's default");
            assert_eq!((of.group.as_str(), of.hook.as_str()), ("g", "up"));
            let data = of.data("i-1");
            assert_eq!(data.token, None, "by instance id");
            assert_eq!(data.wait_state(), PENDING_WAIT);
        }
        other => panic!("{other:?}"),
    }
    let configured = Definition::from_yaml(
        "transitions: [{source: a, dest: b, triggers: [{name: go}]}]\nreconcile: {groups: [g], complete_after_seconds: 700, result: {launching: CONTINUE}}",
    )
    .unwrap();
    let p = plan(
        &configured,
        configured.reconcile().unwrap(),
        &[node("a", Some(800))],
        &instance(PENDING_WAIT),
        now(),
    );
    assert!(
        matches!(
            p.findings[0].action,
            Action::Complete {
                result: LifecycleResult::Continue,
                ..
            }
        ),
        "{p:?}"
    );

    let p = plan(
        &def,
        &spec,
        &[with_command(node("starting", Some(60)), Some(60))],
        &instance(PENDING_WAIT),
        now(),
    );
    match &p.findings[0].action {
        Action::Heartbeat {
            command, next_due, ..
        } => {
            assert_eq!(command, "cmd-1");
            assert_eq!(
                *next_due,
                Some(NOW_SECS + 3600),
                "now plus the hook's timeout"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hooks_are_chosen_by_name_or_when_alone() {
    let mut observed = instance(PENDING_WAIT);
    observed.hooks.push(Hook {
        name: "theirs".into(),
        ..observed.hooks[0].clone()
    });
    assert_eq!(
        decide(node("finished_cloud_init", Some(700)), &observed),
        [("leave_alone", "ambiguous_hook".to_owned())]
    );
    let named = Definition::from_yaml(
        "transitions: [{source: finished_cloud_init, dest: b, triggers: [{name: go}]}]\nreconcile: {groups: [{name: g, launch_hook: up}]}",
    )
    .unwrap();
    let p = plan(
        &named,
        named.reconcile().unwrap(),
        &[node("finished_cloud_init", Some(700))],
        &observed,
        now(),
    );
    match &p.findings[0].action {
        Action::Resume { of } => assert_eq!(of.hook, "up"),
        other => panic!("{other:?}"),
    }
    observed.hooks.clear();
    assert_eq!(
        decide(node("finished_cloud_init", Some(700)), &observed),
        [("leave_alone", "no_hook".to_owned())]
    );
}

#[test]
fn waiting_instances_without_a_node_and_other_groups() {
    let def = def();
    let spec = spec(&def);
    let mut observed = instance(PENDING_WAIT);
    observed.instances.push(Instance {
        id: "i-9".into(),
        group: "not-ours".into(),
        lifecycle_state: PENDING_WAIT.into(),
    });
    let p = plan(&def, &spec, &[], &observed, now());
    assert_eq!(p.findings.len(), 1, "{p:?}");
    assert_eq!(p.findings[0].reason, Reason::NoNode);
    let mut tomb = node("", None);
    tomb.removed = true;
    let p = plan(
        &def,
        &spec,
        &[tomb.clone()],
        &instance(TERMINATING_WAIT),
        now(),
    );
    assert_eq!(p.findings[0].reason, Reason::Removed);
    assert!(p.states.is_empty(), "tombstones are not counted");
    // An instance of another group, waiting, with a node: not ours to act on.
    let mut elsewhere = instance(PENDING_WAIT);
    elsewhere.instances[0].group = "not-ours".into();
    assert!(decide(node("finished_cloud_init", Some(3000)), &elsewhere).is_empty());
    assert!(
        unlisted(&[tomb], &[]).is_empty(),
        "tombstones need no lookup"
    );
}

#[test]
fn counts_per_state_mark_the_stuck() {
    let def = def();
    let spec = spec(&def);
    let mut a = node("serving", Some(10));
    a.id = "i-a".into();
    let mut b = node("failure", Some(10));
    b.id = "i-b".into();
    let mut c = node("starting", Some(700));
    c.id = "i-c".into();
    let mut d = node("serving", Some(10));
    d.id = "i-d".into();
    let observed = Observed {
        instances: vec![
            Instance {
                id: "i-a".into(),
                group: "g".into(),
                lifecycle_state: "InService".into(),
            },
            Instance {
                id: "i-b".into(),
                group: "g".into(),
                lifecycle_state: "InService".into(),
            },
            Instance {
                id: "i-c".into(),
                group: "g".into(),
                lifecycle_state: PENDING_WAIT.into(),
            },
        ],
        looked_up: ["i-d".to_owned()].into(),
        hooks: hooks(),
    };
    let nodes = [a, b, c, d];
    assert_eq!(unlisted(&nodes, &observed.instances), ["i-d"]);
    let p = plan(&def, &spec, &nodes, &observed, now());
    assert_eq!(
        p.states["serving"],
        Count { nodes: 2, stuck: 1 },
        "i-d is gone"
    );
    assert_eq!(p.states["failure"], Count { nodes: 1, stuck: 1 });
    assert_eq!(p.states["starting"], Count { nodes: 1, stuck: 1 });
    let order: Vec<&str> = p.findings.iter().map(|f| f.node.as_str()).collect();
    assert_eq!(order, ["i-b", "i-c", "i-d"]);
}

#[test]
fn facts_read_nodes_leases_tombstones_and_pending_commands() {
    let items: Vec<Item> = [
        json!({"Ident": "cmd-1", "ItemType": "command", "RunningOn": "i-1",
               "LifecycleData": {"EC2InstanceId": "i-1", "AutoScalingGroupName": "g", "LifecycleHookName": "up",
                                 "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "ActionDueAt": NOW_SECS + 60}}),
        json!({"Ident": "cmd-old", "ItemType": "command", "RunningOn": "i-1", "ExpiresAt": NOW_SECS - 1}),
        json!({"Ident": "delivery#event#e", "Delivery": "done"}),
        json!({"Ident": "i-1", "ItemStatus": "starting", "ItemType": "worker", "ChangedAt": (NOW_SECS - 5) * 1000,
               "LeaseOwner": "x", "LeaseUntil": (NOW_SECS + 5) * 1000}),
        json!({"Ident": "i-0", "Removed": true, "ExpiresAt": NOW_SECS + 100}),
        json!({"Ident": "i-2", "ItemStatus": 3}),
    ]
    .into_iter()
    .map(|v| match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    })
    .collect();
    let nodes = facts(&items, now());
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["i-0", "i-1"], "a malformed item is skipped");
    assert!(nodes[0].removed);
    let n = &nodes[1];
    assert_eq!(n.age(now()), Some(Duration::from_secs(5)));
    assert_eq!(n.held(now()).map(|(o, _)| o), Some("x"));
    assert_eq!(n.pending.len(), 1, "the expired record is not pending");
    assert_eq!(n.pending[0].due(), Some(now() + Duration::from_secs(60)));
}

fn arb_node() -> impl Strategy<Value = NodeFacts> {
    (
        0..6usize,
        prop::sample::select(vec![
            "finished_cloud_init",
            "pending",
            "starting",
            "serving",
            "draining",
            "failure",
            "failed",
            "mystery",
        ]),
        prop::option::of(0..10_000u64),
        prop::option::of(-600..600i64),
        any::<bool>(),
        prop::option::of(prop::option::of(0..5_000u64)),
    )
        .prop_map(|(i, state, age, lease, removed, command)| {
            let mut n = node(state, age);
            n.id = format!("i-{i}");
            if let Some(l) = lease {
                n = held(n, l);
            }
            n.removed = removed;
            if let Some(due) = command {
                n = with_command(n, due);
            }
            n
        })
}

fn arb_observed() -> impl Strategy<Value = Observed> {
    (
        prop::collection::vec(
            (
                0..8usize,
                prop::sample::select(vec!["g", "h"]),
                prop::sample::select(vec![
                    PENDING_WAIT,
                    TERMINATING_WAIT,
                    "InService",
                    "Warmed:Pending:Wait",
                ]),
            ),
            0..8,
        ),
        prop::collection::btree_set((0..8usize).prop_map(|i| format!("i-{i}")), 0..8),
    )
        .prop_map(|(instances, looked_up)| Observed {
            instances: instances
                .into_iter()
                .map(|(i, g, s)| Instance {
                    id: format!("i-{i}"),
                    group: g.into(),
                    lifecycle_state: s.into(),
                })
                .collect(),
            looked_up,
            hooks: hooks(),
        })
}

proptest! {
    /// Whatever the table and Auto Scaling say: a held node is never acted on; a node gets at
    /// most one action that changes something; only a node confirmed in no group is removed;
    /// only an instance waiting in a configured group is resumed, heartbeaten or completed,
    /// and completed only once unchanged for `complete_after`.
    #[test]
    fn the_sweep_never_acts_where_it_must_not(
        mut nodes in prop::collection::vec(arb_node(), 0..8),
        observed in arb_observed(),
    ) {
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes.dedup_by(|a, b| a.id == b.id);
        let def = def();
        let spec = spec(&def);
        let p = plan(&def, &spec, &nodes, &observed, now());
        let by_id: BTreeMap<&str, &NodeFacts> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        let mut acted: BTreeSet<&str> = BTreeSet::new();
        for f in p.findings.iter().filter(|f| f.action.acts()) {
            prop_assert!(acted.insert(f.node.as_str()), "two actions on {}", f.node);
            let n = by_id[f.node.as_str()];
            prop_assert!(n.held(now()).is_none(), "acted on a held node: {f:?}");
            prop_assert!(!n.removed);
            // The last listed instance wins, as the plan's map does.
            let inst = observed.instances.iter().rev().find(|i| i.id == f.node);
            match &f.action {
                Action::Remove => {
                    prop_assert!(inst.is_none() && observed.looked_up.contains(&f.node));
                }
                Action::Resume { of } | Action::Heartbeat { of, .. } | Action::Complete { of, .. } => {
                    let inst = inst.expect("acted on an instance Auto Scaling knows");
                    prop_assert_eq!(inst.group.as_str(), "g");
                    prop_assert_eq!(waits_on(&inst.lifecycle_state), Some(of.transition));
                    if matches!(f.action, Action::Complete { .. }) {
                        prop_assert!(n.age(now()).is_some_and(|a| a >= Duration::from_secs(2700)));
                    }
                    if matches!(f.action, Action::Resume { .. }) {
                        prop_assert!(resumable(&def, &n.state, of.transition).is_ok());
                        prop_assert!(n.pending.is_empty());
                    }
                }
                _ => {}
            }
        }
        let counted: usize = p.states.values().map(|c| c.nodes).sum();
        prop_assert_eq!(counted, nodes.iter().filter(|n| !n.removed).count());
    }
}
