//! Property tests of the configuration compiler: it never panics, whatever it is given, and
//! whatever compiles is internally consistent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifecycle::config::{ConfigErrors, Definition, FAILURE_STATE, RawConfig};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("c".to_owned()),
        Just("failure".to_owned()),
        Just("trigger".to_owned()),
        Just("is_launching".to_owned()),
        Just("remove_from_db".to_owned()),
        "[a-z_]{1,8}",
    ]
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(name(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
        name(),
        Just("null".to_owned()),
        Just("7".to_owned()),
    ]
}

prop_compose! {
    fn trigger()(n in name(), p in names(), c in names(), u in names(), b in names(), a in names(),
                 s in any::<bool>(), i in any::<bool>(), extra in prop::option::of(name())) -> String {
        let mut t = format!("{{name: {n}, prepare: {p}, conditions: {c}, unless: {u}, before: {b}, after: {a}, stop_after_trigger: {s}, ignore_errors: {i}");
        if let Some(k) = extra { t.push_str(&format!(", {k}: 1")); }
        t.push('}');
        t
    }
}

prop_compose! {
    fn transition()(src in prop_oneof![name(), names()], dest in prop_oneof![name(), Just("null".to_owned())],
                    ts in prop::collection::vec(trigger(), 0..3), stop in any::<bool>()) -> String {
        format!("- {{source: {src}, dest: {dest}, stop_after_state_change: {stop}, triggers: [{}]}}", ts.join(", "))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = Definition::from_yaml(&text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = RawConfig::from_yaml(&text);
    }

    #[test]
    fn compiled_definitions_are_consistent(ts in prop::collection::vec(transition(), 1..6)) {
        let yaml = ts.join("\n");
        match Definition::from_yaml(&yaml) {
            Ok(def) => {
                // Compiling is deterministic, and the definition is whole.
                prop_assert_eq!(&Definition::from_yaml(&yaml).unwrap(), &def);
                prop_assert_eq!(def.transitions().len(), ts.len());
                consistent(&def)?;
            }
            Err(ConfigErrors(errors)) => {
                // Refused with at least one error, each saying something, the same each time.
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| !e.message.is_empty()));
                prop_assert_eq!(Definition::from_yaml(&yaml).unwrap_err().0, errors);
            }
        }
    }

    #[test]
    fn valid_configurations_compile_consistently(
        spec in prop::collection::vec(
            (prop::collection::vec(0usize..6, 1..3), prop::option::of(0usize..6),
             prop::collection::vec((0usize..4, prop::collection::vec(0usize..4, 0..3),
                                    prop::collection::vec(0usize..3, 0..2)), 1..3)),
            1..6)
    ) {
        const CONDITIONS: [&str; 4] = ["is_launching", "is_terminating", "is_command", "is_new_node"];
        const TASKS: [&str; 3] = ["remove_from_db", "apply_dns_changes", "record_lifecycle_action_heartbeat"];
        let mut used_dests = Vec::new();
        let mut yaml = String::from("transitions:\n");
        for (sources, dest, triggers) in &spec {
            let dest = match dest {
                Some(d) if !used_dests.contains(d) => {
                    used_dests.push(*d);
                    format!("s{d}")
                }
                _ => "null".to_owned(),
            };
            let sources: Vec<String> = sources.iter().map(|s| format!("s{s}")).collect();
            let triggers: Vec<String> = triggers
                .iter()
                .map(|(n, conds, tasks)| {
                    let conds: Vec<&str> = conds.iter().map(|c| CONDITIONS[*c]).collect();
                    let tasks: Vec<&str> = tasks.iter().map(|t| TASKS[*t]).collect();
                    format!("{{name: t{n}, conditions: [{}], before: [{}]}}", conds.join(", "), tasks.join(", "))
                })
                .collect();
            yaml.push_str(&format!(
                "  - {{source: [{}], dest: {dest}, triggers: [{}]}}\n",
                sources.join(", "),
                triggers.join(", ")
            ));
        }
        let compiled = Definition::from_yaml(&yaml);
        prop_assert!(compiled.is_ok(), "{yaml}\n{compiled:?}");
        if let Ok(def) = compiled {
            consistent(&def)?;
            // Every name here is built in: nothing is left to register.
            prop_assert!(def.unregistered(|_| None).is_empty());
        }
    }
}

/// What every compiled definition satisfies.
fn consistent(def: &Definition) -> Result<(), TestCaseError> {
    // `failure` is always a state; every candidate of every state leads from it.
    prop_assert!(def.state_id(FAILURE_STATE).is_some());
    for (i, state) in def.states().iter().enumerate() {
        let id = def.state_id(state).unwrap();
        prop_assert_eq!(id.index(), i);
        for c in def.candidates(id) {
            let (t, g) = def.resolve(*c);
            prop_assert!(t.sources.contains(&id));
            prop_assert_ne!(g.name.as_str(), "trigger");
            if let Some(d) = t.dest {
                prop_assert!(d.index() < def.states().len());
            }
            // Every task and condition id names an entry of the tables, by the name used.
            for id in g.prepare.iter().chain(&g.before).chain(&g.after) {
                prop_assert!(id.index() < def.tasks().len());
                prop_assert!(!def.task_name(*id).is_empty());
            }
            for id in g.conditions.iter().chain(&g.unless) {
                prop_assert!(id.index() < def.conditions().len());
                prop_assert!(!def.condition_name(*id).is_empty());
            }
        }
    }
    // Every transition is a candidate of each of its sources.
    for (ti, t) in def.transitions().iter().enumerate() {
        for s in &t.sources {
            prop_assert!(
                def.candidates(*s)
                    .iter()
                    .any(|c| c.transition_index() == ti)
            );
        }
    }
    // Destinations are unique; names in the tables are unique.
    let mut dests: Vec<_> = def.transitions().iter().filter_map(|t| t.dest).collect();
    let n = dests.len();
    dests.sort();
    dests.dedup();
    prop_assert_eq!(dests.len(), n);
    let mut names: Vec<&str> = def
        .tasks()
        .map(|(_, n, _)| n)
        .chain(def.conditions().map(|(_, n, _)| n))
        .collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    prop_assert_eq!(names.len(), n, "a name is both a task and a condition");
    Ok(())
}
