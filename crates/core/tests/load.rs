//! The loading machine (SPEC 4.1) driven by a simulated world: random events, random node
//! statuses appearing over time, records that arrive late or never, random timeouts and
//! deadlines, other invocations processing the same event or holding the node. Whatever
//! happens, the machine's decisions keep the rules: no wait outlives its bound, a terminating
//! event never waits for cloud-init, heartbeats only for lifecycle actions and never more
//! often than asked, the command record is only read, a duplicate is recognised, processing
//! starts only from a state that has a trigger, on a node this invocation claimed, for an
//! event whose delivery it began (SPEC 9).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use lifecycle::delivery::{Begin, Claim};
use lifecycle::event::{
    COMMAND_MARKER, CommandStatus, Event, LifecycleData, LifecycleTransition, Source,
};
use lifecycle::load::{LoadError, LoadRules, LoadStep, Loader};
use lifecycle::{CommandRecord, Deadline, Definition, Node};
use proptest::prelude::*;
use serde_json::Map;

const CONFIG: &str = r"
transitions:
  - {source: finished_cloud_init, dest: ready, triggers: [{name: join}]}
  - {source: ready, dest: leaving, triggers: [{name: leave}]}
  - {source: leaving, dest: null, triggers: [{name: bye}]}
  - {source: backup, dest: null, triggers: [{name: run}]}
";

const STATUSES: &[Option<&str>] = &[
    None,
    Some("new"),
    Some("pending"),
    Some("finished_cloud_init"),
    Some("ready"),
    Some("leaving"),
    Some("unknown_state"),
];

fn lifecycle(transition: LifecycleTransition, warm: bool) -> LifecycleData {
    LifecycleData {
        instance_id: "i-1".into(),
        auto_scaling_group: "g".into(),
        hook_name: "h".into(),
        token: Some("t".into()),
        transition,
        metadata: Map::new(),
        origin: warm.then(|| "WarmPool".to_owned()),
        destination: None,
        due_at: None,
    }
}

fn transition(launching: bool) -> LifecycleTransition {
    if launching {
        LifecycleTransition::Launching
    } else {
        LifecycleTransition::Terminating
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Lifecycle {
        launching: bool,
        warm: bool,
    },
    Command {
        ours: bool,
        terminal: bool,
        record_after: Option<u8>,
        launching: bool,
    },
    Scheduled,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (any::<bool>(), any::<bool>())
            .prop_map(|(launching, warm)| Kind::Lifecycle { launching, warm }),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(0u8..6),
            any::<bool>()
        )
            .prop_map(|(ours, terminal, record_after, launching)| Kind::Command {
                ours,
                terminal,
                record_after,
                launching
            }),
        Just(Kind::Scheduled),
    ]
}

fn event(kind: &Kind) -> Event {
    match kind {
        Kind::Lifecycle { launching, warm } => {
            let mut e = Event::new(Source::AutoScaling, "lifecycle");
            e.lifecycle = Some(lifecycle(transition(*launching), *warm));
            e
        }
        Kind::Command { ours, terminal, .. } => {
            let mut e = Event::new(Source::Ssm, "EC2 Command Status-change Notification");
            let mut commands = vec!["/bin/true".to_owned()];
            if *ours {
                commands.insert(0, COMMAND_MARKER.to_owned());
            }
            e.command = Some(CommandStatus {
                command_id: "cmd-1".into(),
                status: if *terminal { "Success" } else { "InProgress" }.into(),
                document_name: None,
                commands,
                instance_ids: vec!["i-1".into()],
            });
            e
        }
        Kind::Scheduled => Event::new(Source::Schedule, "backup"),
    }
}

fn record(launching: bool) -> CommandRecord {
    CommandRecord {
        id: "cmd-1".into(),
        running_on: vec!["i-1".into()],
        comment: String::new(),
        commands: vec![],
        event_name: "lifecycle".into(),
        lifecycle: Some(lifecycle(transition(launching), false)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn loading_keeps_its_rules_whatever_the_world_does(
        kind in kind(),
        statuses in proptest::collection::vec(0..STATUSES.len(), 1..8),
        wait_timeout in 0u64..120,
        poll in 0u64..20,
        heartbeat in 0u64..30,
        record_wait in 0u64..12,
        deadline in proptest::option::of(0u64..200),
        with_id in any::<bool>(),
        begins in proptest::collection::vec(0u8..3, 1..5),
        claims in proptest::collection::vec(0u8..4, 1..5),
        busy_wait in 0u64..15,
        consumed in any::<bool>(),
    ) {
        let def = Definition::from_yaml(CONFIG).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let mut rules = LoadRules::default();
        rules.wait_timeout = Duration::from_secs(wait_timeout);
        rules.poll_interval = Duration::from_secs(poll);
        rules.heartbeat_interval = Duration::from_secs(heartbeat);
        rules.record_wait = Duration::from_secs(record_wait);
        rules.busy_wait = Duration::from_secs(busy_wait);
        let deadline = deadline.map_or(Deadline::NONE, |d| Deadline::at(t0 + Duration::from_secs(d)));
        let mut e = event(&kind);
        if with_id {
            e.id = Some("evt-1".into());
        }
        let keyed = lifecycle::delivery::delivery_key(&e).is_some();
        // A lifecycle event's delivery is begun by the claim, on its node.
        let on_node = lifecycle::delivery::on_node(&e);
        let has_lifecycle_event = e.lifecycle.is_some();
        let mut loader = Loader::new(&def, e, rules.clone(), deadline);

        let mut now = t0;
        let mut takes = 0u8;
        let mut reads = 0usize;
        let mut taken: Option<CommandRecord> = None;
        let mut wait_started: Option<SystemTime> = None;
        let mut record_wait_started: Option<SystemTime> = None;
        let mut last_beat: Option<SystemTime> = None;
        let mut last_status: Option<&str> = None;
        let (mut begun, mut done_answered, mut n_begins) = (false, false, 0usize);
        let (mut claimed, mut n_claims, mut removed) = (false, 0usize, false);
        let mut busy_started: Option<SystemTime> = None;
        let mut last_ask = "";
        let mut rechecked = false;
        let mut steps = 0;
        let end = loop {
            steps += 1;
            prop_assert!(steps < 10_000, "loading does not end");
            match loader.poll() {
                LoadStep::ReadRecord { command_id } if claimed => {
                    // After the claim, the record is read again: still there, or consumed by
                    // another processing of the same status.
                    prop_assert_eq!(command_id, "cmd-1");
                    prop_assert!(taken.is_some(), "a recheck of a record never read");
                    rechecked = true;
                    let still = if consumed { None } else { taken.clone() };
                    loader.record_read(still, now);
                }
                LoadStep::ReadRecord { command_id } => {
                    last_ask = "record";
                    prop_assert_eq!(command_id, "cmd-1");
                    prop_assert!(taken.is_none(), "a second read after a record was read");
                    let ours = matches!(kind, Kind::Command { ours: true, .. });
                    prop_assert!(begun == (ours && keyed), "our command's delivery begins first, anyone else's never before");
                    let Kind::Command { terminal, record_after, launching, .. } = &kind else {
                        prop_assert!(false, "a take for an event without a command");
                        unreachable!()
                    };
                    prop_assert!(*terminal, "a non-final status must not consume the record");
                    let answer = record_after.filter(|k| takes >= *k).map(|_| record(*launching));
                    takes += 1;
                    if answer.is_none() && record_wait_started.is_none() {
                        record_wait_started = Some(now);
                    }
                    taken.clone_from(&answer);
                    loader.record_read(answer, now);
                }
                LoadStep::BeginDelivery { key } => {
                    last_ask = "busy";
                    prop_assert!(keyed, "a delivery record for an event without a key");
                    prop_assert!(key.starts_with("delivery#"));
                    prop_assert!(!begun && !claimed && reads == 0, "begin comes first");
                    prop_assert!(
                        taken.is_none() || !matches!(kind, Kind::Command { ours: true, .. }),
                        "our command's record is read after its delivery began"
                    );
                    let answer = begins[n_begins.min(begins.len() - 1)];
                    n_begins += 1;
                    let begin = match answer {
                        0 => { begun = true; busy_started = None; Begin::Begun }
                        1 => { busy_started.get_or_insert(now); Begin::InProgress { until: now + Duration::from_secs(60) } }
                        _ => { done_answered = true; Begin::Done { outcome: "no_state_change".into() } }
                    };
                    loader.delivery_begun(begin, now);
                }
                LoadStep::Claim { id, delivery, waiting } => {
                    last_ask = "busy";
                    prop_assert_eq!(
                        waiting.is_some(),
                        on_node && !loader.event().is_terminating() && (loader.event().is_launching() && loader.event().source == Source::AutoScaling || loader.event().is_command()),
                        "a lifecycle event that waits for cloud-init claims on condition"
                    );
                    if let Some(waiting) = &waiting {
                        // The claim is the lifecycle event's read of its node: refused, writing
                        // nothing, while cloud-init runs.
                        let status = STATUSES[statuses[reads.min(statuses.len() - 1)]];
                        if waiting.iter().any(|w| w == status.unwrap_or("new")) {
                            reads += 1;
                            last_status = status;
                            last_ask = "node";
                            let mut n = Node::absent("i-1");
                            n.status = status.unwrap_or("new").to_owned();
                            loader.claimed(Claim::Waiting { node: n }, now);
                            continue;
                        }
                    }
                    prop_assert_eq!(id, "i-1");
                    prop_assert!(reads >= 1 || on_node, "a claim before the node was read (a lifecycle event claims first)");
                    prop_assert_eq!(delivery.is_some(), keyed && on_node, "the claim begins the delivery exactly for a keyed lifecycle event");
                    prop_assert!(begun || !keyed || on_node, "a claim before the delivery began");
                    let answer = claims[n_claims.min(claims.len() - 1)];
                    n_claims += 1;
                    let claim = match answer {
                        0 => {
                            claimed = true;
                            busy_started = None;
                            begun |= delivery.is_some();
                            if on_node {
                                // The claim is the lifecycle event's read of its node.
                                last_status = STATUSES[statuses[reads.min(statuses.len() - 1)]];
                                reads += 1;
                                last_ask = "node";
                            }
                            let mut n = Node::absent("i-1");
                            n.status = last_status.unwrap_or("new").to_owned();
                            Claim::Claimed { node: n, created: last_status.is_none(), resume: None, stale: Vec::new() }
                        }
                        1 => { busy_started.get_or_insert(now); Claim::Held { until: now + Duration::from_secs(60) } }
                        3 if delivery.is_some() => { done_answered = true; Claim::Done { outcome: "no_state_change".into() } }
                        _ => { removed = true; Claim::Removed }
                    };
                    loader.claimed(claim, now);
                }
                LoadStep::ReadNode { id } => {
                    last_ask = "node";
                    prop_assert_eq!(id, "i-1");
                    prop_assert!(begun || !keyed || on_node, "a node read before the delivery began");
                    let status = STATUSES[statuses[reads.min(statuses.len() - 1)]];
                    reads += 1;
                    last_status = status;
                    let node = status.map(|s| {
                        let mut n = Node::absent("i-1");
                        n.status = s.to_owned();
                        n
                    });
                    loader.node_read(node, now);
                }
                LoadStep::Heartbeat => {
                    prop_assert!(loader.event().lifecycle.is_some(), "a heartbeat without a lifecycle action");
                    prop_assert!(heartbeat > 0, "a heartbeat though heartbeats are off");
                    let since = last_beat.or(wait_started).unwrap();
                    prop_assert!(now.duration_since(since).unwrap() >= rules.heartbeat_interval);
                    last_beat = Some(now);
                    loader.heartbeat_sent(now);
                }
                LoadStep::Sleep { until } => {
                    prop_assert!(until > now, "a sleep that does not move time");
                    if let Some(at) = deadline.instant() {
                        prop_assert!(until <= at, "a sleep past the deadline");
                    }
                    if last_ask == "busy" {
                        // Waiting for another invocation: bounded by busy_wait.
                        let started = busy_started.unwrap();
                        prop_assert!(until <= started + rules.busy_wait);
                    } else if last_ask == "record" {
                        // Waiting for a record: bounded by record_wait.
                        let started = record_wait_started.unwrap();
                        prop_assert!(until <= started + rules.record_wait);
                    } else {
                        // Waiting for cloud-init: bounded by wait_timeout, never when terminating.
                        let started = *wait_started.get_or_insert(now);
                        prop_assert!(until <= started + rules.wait_timeout);
                        prop_assert!(!loader.event().is_terminating(), "a terminating event waits");
                    }
                    now = until;
                    loader.woke(now);
                }
                other => break other,
            }
        };
        // Asking again gives the same answer.
        prop_assert_eq!(&loader.poll(), &end);

        match &end {
            LoadStep::Ready { state } => {
                prop_assert!(!def.candidates(*state).is_empty());
                prop_assert!(begun || !keyed, "processing without a delivery record");
                prop_assert!(claimed || reads == 0, "processing a node not claimed");
                prop_assert!(rechecked || taken.is_none(), "a record not read again after the claim");
                prop_assert!(!(rechecked && consumed), "processing a consumed record");
                let expected = match (&loader.event().lifecycle, loader.event().is_command()) {
                    (Some(_), _) | (None, true) => last_status.unwrap_or("new"),
                    (None, false) => loader.event().name.as_str(),
                };
                prop_assert_eq!(def.state_name(*state), expected);
            }
            LoadStep::NotSupported { .. } => {
                prop_assert!(
                    removed || (taken.is_none() && matches!(kind, Kind::Command { .. })),
                    "not supported, yet neither a foreign command nor a removed node"
                );
            }
            LoadStep::Duplicate { .. } => {
                prop_assert!(done_answered || (rechecked && consumed), "a duplicate nobody reported");
            }
            LoadStep::Failed { error } => {
                if let LoadError::Busy { .. } = error {
                    prop_assert!(busy_started.is_some(), "busy, yet nobody was");
                }
                if let LoadError::WaitTimeout { .. } = error {
                    prop_assert!(loader.event().is_launching() || loader.event().is_command());
                    prop_assert!(!loader.event().is_terminating());
                }
            }
            other => prop_assert!(false, "loading ended with {other:?}"),
        }
        // A plain scheduled event never touches the store.
        if matches!(kind, Kind::Scheduled) {
            prop_assert_eq!(reads, 0);
            prop_assert_eq!(takes, 0);
        }
        // A launching or terminating lifecycle event whose delivery began reads its node.
        if has_lifecycle_event && begun {
            prop_assert!(reads >= 1);
        }
    }
}

#[test]
fn a_launch_waits_for_cloud_init_with_heartbeats_then_starts_from_the_initial_state() {
    let def = Definition::from_yaml(CONFIG).unwrap();
    let mut rules = LoadRules::default();
    rules.wait_timeout = Duration::from_secs(60);
    rules.poll_interval = Duration::from_secs(5);
    rules.heartbeat_interval = Duration::from_secs(10);
    let mut e = Event::new(Source::AutoScaling, "launch");
    e.lifecycle = Some(lifecycle(LifecycleTransition::Launching, false));
    let mut loader = Loader::new(&def, e, rules, Deadline::NONE);
    let t0 = SystemTime::UNIX_EPOCH;
    let mut now = t0;
    let mut log = Vec::new();
    let mut reads = 0;
    loop {
        match loader.poll() {
            LoadStep::BeginDelivery { key } => {
                log.push(format!("begin {key}"));
                loader.delivery_begun(Begin::Begun, now);
            }
            LoadStep::Claim { id, waiting, .. } => {
                // The claim comes first; refused while cloud-init runs, it is the node's read.
                reads += 1;
                let mut node = Node::absent("i-1");
                node.status = if reads < 5 {
                    "pending"
                } else {
                    "finished_cloud_init"
                }
                .into();
                let waits = waiting.is_some_and(|w| w.contains(&node.status));
                log.push(format!("claim {id} ({})", node.status));
                let answer = if waits {
                    Claim::Waiting { node }
                } else {
                    Claim::Claimed {
                        node,
                        created: false,
                        resume: None,
                        stale: Vec::new(),
                    }
                };
                loader.claimed(answer, now);
            }
            LoadStep::ReadNode { .. } => {
                reads += 1;
                let mut n = Node::absent("i-1");
                n.status = if reads < 5 {
                    "pending"
                } else {
                    "finished_cloud_init"
                }
                .into();
                log.push(format!("read {}", n.status));
                loader.node_read(Some(n), now);
            }
            LoadStep::Sleep { until } => {
                log.push(format!(
                    "sleep {}",
                    until.duration_since(now).unwrap().as_secs()
                ));
                now = until;
                loader.woke(now);
            }
            LoadStep::Heartbeat => {
                log.push(format!(
                    "heartbeat at {}",
                    now.duration_since(t0).unwrap().as_secs()
                ));
                loader.heartbeat_sent(now);
            }
            LoadStep::Ready { state } => {
                log.push(format!("ready {}", def.state_name(state)));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        log,
        [
            "claim i-1 (pending)",
            "sleep 5",
            "read pending",
            "sleep 5",
            "read pending",
            "heartbeat at 10",
            "sleep 5",
            "read pending",
            "sleep 5",
            "read finished_cloud_init",
            "claim i-1 (finished_cloud_init)",
            "ready finished_cloud_init"
        ]
    );
}
