//! Configuration: YAML in, an immutable [`Definition`] out (SPEC 3).
//!
//! Two steps, each reporting every error at once, each naming the transition, trigger and key:
//! 1. [`RawConfig::from_yaml`] (`raw.rs`) checks the shape — known keys, types, required
//!    fields — and yields plain data;
//! 2. [`Definition::compile`] (`compile.rs`) interns states, orders triggers, checks the
//!    `tasks:` section ([`declared`], placeholders in [`template`]) and classifies every task
//!    and condition name: built in ([`BuiltinTask`], [`Predicate`]), declared, or external —
//!    a name the program that runs the definition registers.
//!
//! Nothing downstream validates again. The definition is data: it holds no code, so
//! `lifecycle validate` and `graph` need nothing but the file.

mod builtin;
mod compile;
pub mod declared;
mod definition;
mod error;
mod raw;
pub mod reconcile;
pub mod report;
pub mod template;

pub use builtin::{BuiltinTask, Predicate};
pub use definition::{
    Candidate, CondId, ConditionKind, Definition, Role, StateId, TaskId, TaskKind, Transition,
    Trigger,
};
pub use error::{ConfigError, ConfigErrorKind, ConfigErrors};
pub use raw::{RawConfig, RawTransition, RawTrigger};

/// The state every error leads to (SPEC 4.3).
pub const FAILURE_STATE: &str = "failure";

/// The trigger name that is reserved and refused.
pub const RESERVED_TRIGGER: &str = "trigger";

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(yaml: &str) -> Vec<String> {
        match Definition::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(es)) => es.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn bare_list_is_shorthand_and_initial_is_first_source() {
        let d = Definition::from_yaml(
            "- {source: a, dest: b, triggers: [{name: go}]}\n- {source: b, dest: c, triggers: [{name: go2}]}\n"
        )
        .unwrap();
        assert_eq!(d.initial_state(), "a");
        assert_eq!(d.states(), ["a", "b", "c", "failure"]);
    }

    #[test]
    fn every_error_is_reported_at_once_with_its_location() {
        let es = errors(
            r#"
initial_state: nowhere
colour: blue
transitions:
  - source: a
    dest: b
    triggers:
      - name: trigger
        conditions: always
        after: [no_such_task]
        wat: 1
  - source: [c]
    dest: b
    triggers: [{name: x, stop_after_trigger: "yes"}]
"#,
        );
        let joined = es.join("\n");
        for needle in [
            "top level: unknown key `colour`",
            "transitions[0] (a -> b), trigger trigger, key conditions: must be a list, not the string \"always\"",
            "transitions[0] (a -> b), trigger trigger: unknown key `wat`",
            "transitions[1] (c -> b), trigger x, key stop_after_trigger: must be true or false",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
        }
        // Semantic errors are reported alongside shape errors.
        assert!(
            joined.contains("key name: `trigger` is a reserved trigger name"),
            "{joined}"
        );
        assert!(
            joined.contains("key initial_state: `nowhere` is not a source"),
            "{joined}"
        );
        let es = errors(
            r#"
initial_state: nowhere
transitions:
  - {source: a, dest: b, triggers: [{name: trigger, after: [no_such_task], conditions: [remove_from_db]}]}
  - {source: [c], dest: b, triggers: [{name: x, before: [is_launching]}]}
"#,
        )
        .join("\n");
        for needle in [
            "transitions[0] (a -> b), trigger trigger, key name: `trigger` is a reserved trigger name",
            "transitions[0] (a -> b), trigger trigger, key conditions: `remove_from_db` is a task, not a condition",
            "transitions[1] (c -> b), key dest: destination `b` is already the destination of transitions[0]",
            "transitions[1] (c -> b), trigger x, key before: `is_launching` is a condition, not a task",
            "key initial_state: `nowhere` is not a source or destination",
        ] {
            assert!(es.contains(needle), "missing {needle:?} in:\n{es}");
        }
    }

    #[test]
    fn external_names_compile_and_are_listed_where_used() {
        let d = Definition::from_yaml(
            r#"
- {source: a, dest: b, triggers: [{name: go, after: [no_such_task], conditions: [quorum]}]}
- {source: b, dest: c, triggers: [{name: on, before: [no_such_task]}]}
"#,
        )
        .unwrap();
        let unknown: Vec<String> = d
            .unregistered(|_| None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            unknown,
            [
                "transitions[0] (a -> b), trigger go, key conditions: unknown condition `quorum`: nothing registers it",
                "transitions[0] (a -> b), trigger go, key after: unknown task `no_such_task`: nothing registers it",
                "transitions[1] (b -> c), trigger on, key before: unknown task `no_such_task`: nothing registers it",
            ]
        );
        let registered = |n: &str| match n {
            "no_such_task" => Some(Role::Task),
            "quorum" => Some(Role::Task),
            _ => None,
        };
        let wrong: Vec<String> = d
            .unregistered(registered)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            wrong,
            [
                "transitions[0] (a -> b), trigger go, key conditions: `quorum` is a task, not a condition"
            ]
        );
        // A name used in both roles is refused when the configuration compiles.
        let es =
            errors("- {source: a, dest: b, triggers: [{name: go, after: [x], conditions: [x]}]}")
                .join("\n");
        assert!(
            es.contains("key after: `x` is used as a condition elsewhere, so it cannot be a task"),
            "{es}"
        );
        // A declared task may not shadow a built-in name.
        let es = errors("transitions: [{source: a, dest: b, triggers: [{name: go}]}]\ntasks: {remove_from_db: {sns_report: {topic_arn: t}}}").join("\n");
        assert!(
            es.contains("tasks.remove_from_db: `remove_from_db` is already a built-in name"),
            "{es}"
        );
    }

    #[test]
    fn definitions_are_plain_data() {
        let yaml = "- {source: a, dest: b, triggers: [{name: go, after: [complete_lifecycle_action, mine]}]}";
        let d = Definition::from_yaml(yaml).unwrap();
        assert_eq!(d.clone(), Definition::from_yaml(yaml).unwrap());
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["tasks"][0][1]["builtin"], "complete_lifecycle_action");
        assert_eq!(json["tasks"][1][1], "external");
    }

    #[test]
    fn trigger_order_is_first_appearance_across_transitions() {
        let d = Definition::from_yaml(
            r#"
- {source: x, dest: y, triggers: [{name: second}]}
- {source: a, dest: b, triggers: [{name: first}, {name: second}]}
- {source: a, dest: c, triggers: [{name: first}]}
"#,
        )
        .unwrap();
        let a = d.state_id("a").unwrap();
        let names: Vec<(&str, usize)> = d
            .candidates(a)
            .iter()
            .map(|c| (d.resolve(*c).1.name.as_str(), c.transition_index()))
            .collect();
        // `second` appeared first (in transitions[0]), so it is tried first.
        assert_eq!(names, [("second", 1), ("first", 1), ("first", 2)]);
    }

    #[test]
    fn not_yaml_and_not_a_mapping_are_errors() {
        assert!(errors("transitions: [").join("").contains("not valid YAML"));
        assert!(errors("42").join("").contains("not the number 42"));
        assert!(errors("{}").join("").contains("`transitions` is required"));
    }
}
