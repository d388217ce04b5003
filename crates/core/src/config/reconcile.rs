//! `reconcile:` — the reconciliation sweep's settings (issue 12), configured once at the top
//! level:
//!
//! ```yaml
//! reconcile:
//!   rule: reconcile                  # the schedule rule whose events run the sweep
//!   groups:                          # the Auto Scaling groups compared with the table
//!     - swarm-workers                # its one launch hook and one terminate hook
//!     - {name: brokers, launch_hook: broker-up, terminate_hook: broker-down}
//!   stale_after_seconds: 600         # no progress this long: drive the stored state again
//!   complete_after_seconds: 2700     # no progress this long: complete the action (default: never)
//!   heartbeat_within_seconds: 900    # heartbeat a waiting action due within this long
//!   gone: report                     # or `remove`: nodes whose instance is in no group
//!   result: {launching: ABANDON, terminating: CONTINUE}   # default: the hook's DefaultResult
//! ```
//!
//! Every problem is reported at once, each naming the field (`reconcile.groups[1].name`).
//! What the sweep does with these settings is [`crate::reconcile`].

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::event::{LifecycleResult, LifecycleTransition};

/// The rule name used when `rule` is not set.
pub const DEFAULT_RULE: &str = "reconcile";
/// `stale_after_seconds` when not set.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);
/// `heartbeat_within_seconds` when not set.
pub const DEFAULT_HEARTBEAT_WITHIN: Duration = Duration::from_secs(900);

/// What the sweep does with a node whose instance is in no Auto Scaling group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gone {
    /// List it in the report; change nothing (the default).
    Report,
    /// Remove it, leaving a tombstone, as `remove_from_db` does.
    Remove,
}

/// One group the sweep compares with the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpec {
    /// The Auto Scaling group's name.
    pub name: String,
    /// The launch hook to heartbeat and complete; `None`: the group's one launch hook.
    pub launch_hook: Option<String>,
    /// The terminate hook; `None`: the group's one terminate hook.
    pub terminate_hook: Option<String>,
}

impl GroupSpec {
    /// The hook named for `transition`, if one is.
    pub fn hook_for(&self, transition: LifecycleTransition) -> Option<&str> {
        match transition {
            LifecycleTransition::Launching => self.launch_hook.as_deref(),
            LifecycleTransition::Terminating => self.terminate_hook.as_deref(),
        }
    }
}

/// The checked `reconcile:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReconcileSpec {
    /// The schedule rule whose events run the sweep (a scheduled event's name is its rule's).
    pub rule: String,
    /// The groups compared with the table, in order.
    pub groups: Vec<GroupSpec>,
    /// A waiting node that has not changed for this long is driven again from its stored
    /// state, as a redelivery of its lifecycle event would.
    pub stale_after: Duration,
    /// A waiting node that has not changed for this long has its lifecycle action completed
    /// with [`ReconcileSpec::result_for`]; `None`: never (the hook's own timeout applies).
    pub complete_after: Option<Duration>,
    /// An action waiting on work in flight (a command) is heartbeaten when it times out
    /// within this long, or when when it times out is not known.
    pub heartbeat_within: Duration,
    /// What to do with nodes whose instance is gone.
    pub gone: Gone,
    /// The result a launch is completed with; `None`: the hook's `DefaultResult`.
    pub launching_result: Option<LifecycleResult>,
    /// The result a termination is completed with; `None`: the hook's `DefaultResult`.
    pub terminating_result: Option<LifecycleResult>,
}

impl ReconcileSpec {
    /// The configured result for an action of `transition`, if one is configured.
    pub fn result_for(&self, transition: LifecycleTransition) -> Option<LifecycleResult> {
        match transition {
            LifecycleTransition::Launching => self.launching_result,
            LifecycleTransition::Terminating => self.terminating_result,
        }
    }

    /// The group named `name`, if the sweep compares it.
    pub fn group(&self, name: &str) -> Option<&GroupSpec> {
        self.groups.iter().find(|g| g.name == name)
    }
}

const KEYS: &[&str] = &[
    "rule",
    "groups",
    "stale_after_seconds",
    "complete_after_seconds",
    "heartbeat_within_seconds",
    "gone",
    "result",
];
const GROUP_KEYS: &[&str] = &["name", "launch_hook", "terminate_hook"];
const RESULT_KEYS: &[&str] = &["launching", "terminating"];

/// One problem in `reconcile:`: the field (`groups[1].name`) and what is wrong.
pub(crate) type FieldError = (String, String);

/// Checks a `reconcile:` value against the machine's `states`.
///
/// # Errors
/// Every problem, each with the field it is about.
pub(crate) fn compile(value: &Value, states: &[String]) -> Result<ReconcileSpec, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    let Value::Object(m) = value else {
        return Err(vec![(
            String::new(),
            format!("must be a mapping with `groups`, not {}", kind(value)),
        )]);
    };
    unknown(m, KEYS, "", &mut errors);

    let rule = match m.get("rule") {
        None | Some(Value::Null) => DEFAULT_RULE.to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) => {
            errors.push((
                "rule".into(),
                format!("must name the schedule rule, not {}", kind(other)),
            ));
            DEFAULT_RULE.to_owned()
        }
    };
    if states.contains(&rule) {
        errors.push((
            "rule".into(),
            format!(
                "`{rule}` is also a state of the machine: a scheduled event of that rule would be ambiguous (name the rule differently)"
            ),
        ));
    }

    let groups = groups(m.get("groups"), &mut errors);
    let stale_after = seconds(m, "stale_after_seconds", &mut errors).unwrap_or(DEFAULT_STALE_AFTER);
    let complete_after = seconds(m, "complete_after_seconds", &mut errors);
    let heartbeat_within =
        seconds(m, "heartbeat_within_seconds", &mut errors).unwrap_or(DEFAULT_HEARTBEAT_WITHIN);
    if let Some(c) = complete_after
        && c <= stale_after
    {
        errors.push((
            "complete_after_seconds".into(),
            format!(
                "must be longer than stale_after_seconds ({}): a node is driven again before its action is completed",
                stale_after.as_secs()
            ),
        ));
    }
    let gone = match m.get("gone") {
        None | Some(Value::Null) => Gone::Report,
        Some(Value::String(s)) if s == "report" => Gone::Report,
        Some(Value::String(s)) if s == "remove" => Gone::Remove,
        Some(other) => {
            errors.push((
                "gone".into(),
                format!("must be `report` or `remove`, not {}", kind(other)),
            ));
            Gone::Report
        }
    };
    let (launching_result, terminating_result) = results(m.get("result"), &mut errors);
    if errors.is_empty() {
        Ok(ReconcileSpec {
            rule,
            groups,
            stale_after,
            complete_after,
            heartbeat_within,
            gone,
            launching_result,
            terminating_result,
        })
    } else {
        Err(errors)
    }
}

fn groups(value: Option<&Value>, errors: &mut Vec<FieldError>) -> Vec<GroupSpec> {
    let list = match value {
        Some(Value::Array(a)) if !a.is_empty() => a,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            errors.push((
                "groups".into(),
                "must list at least one Auto Scaling group: the sweep compares the table with them"
                    .into(),
            ));
            return Vec::new();
        }
        Some(other) => {
            errors.push((
                "groups".into(),
                format!("must be a list of groups, not {}", kind(other)),
            ));
            return Vec::new();
        }
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, g) in list.iter().enumerate() {
        let at = format!("groups[{i}]");
        let spec = match g {
            Value::String(s) if !s.trim().is_empty() => GroupSpec {
                name: s.clone(),
                launch_hook: None,
                terminate_hook: None,
            },
            Value::Object(gm) => {
                unknown(gm, GROUP_KEYS, &at, errors);
                let name = match gm.get("name") {
                    Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                    other => {
                        errors.push((
                            format!("{at}.name"),
                            format!(
                                "must name the group, not {}",
                                other.map_or_else(|| "nothing".to_owned(), kind)
                            ),
                        ));
                        continue;
                    }
                };
                let hook = |key: &str, errors: &mut Vec<FieldError>| match gm.get(key) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    Some(other) => {
                        errors.push((
                            format!("{at}.{key}"),
                            format!("must name a lifecycle hook, not {}", kind(other)),
                        ));
                        None
                    }
                };
                GroupSpec {
                    name,
                    launch_hook: hook("launch_hook", errors),
                    terminate_hook: hook("terminate_hook", errors),
                }
            }
            other => {
                errors.push((
                    at,
                    format!(
                        "must be a group name or {{name, launch_hook, terminate_hook}}, not {}",
                        kind(other)
                    ),
                ));
                continue;
            }
        };
        if !seen.insert(spec.name.clone()) {
            errors.push((
                format!("{at}.name"),
                format!("group `{}` is listed twice", spec.name),
            ));
            continue;
        }
        out.push(spec);
    }
    out
}

fn results(
    value: Option<&Value>,
    errors: &mut Vec<FieldError>,
) -> (Option<LifecycleResult>, Option<LifecycleResult>) {
    let m = match value {
        None | Some(Value::Null) => return (None, None),
        Some(Value::Object(m)) => m,
        Some(other) => {
            errors.push((
                "result".into(),
                format!(
                    "must be a mapping {{launching: CONTINUE|ABANDON, terminating: CONTINUE|ABANDON}}, not {}",
                    kind(other)
                ),
            ));
            return (None, None);
        }
    };
    unknown(m, RESULT_KEYS, "result", errors);
    let one = |key: &str, errors: &mut Vec<FieldError>| match m.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "CONTINUE" => Some(LifecycleResult::Continue),
        Some(Value::String(s)) if s == "ABANDON" => Some(LifecycleResult::Abandon),
        Some(other) => {
            errors.push((
                format!("result.{key}"),
                format!("must be CONTINUE or ABANDON, not {}", kind(other)),
            ));
            None
        }
    };
    (one("launching", errors), one("terminating", errors))
}

fn seconds(m: &Map<String, Value>, key: &str, errors: &mut Vec<FieldError>) -> Option<Duration> {
    match m.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|s| s > 0) => {
            n.as_u64().map(Duration::from_secs)
        }
        Some(other) => {
            errors.push((
                key.to_owned(),
                format!(
                    "must be a whole number of seconds above 0, not {}",
                    kind(other)
                ),
            ));
            None
        }
    }
}

fn unknown(m: &Map<String, Value>, known: &[&str], at: &str, errors: &mut Vec<FieldError>) {
    for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
        let field = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        errors.push((
            field,
            format!("unknown key (expected one of: {})", known.join(", ")),
        ));
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn states() -> Vec<String> {
        vec!["ready".into(), "failure".into()]
    }

    #[test]
    fn defaults_and_both_group_forms() {
        let spec = compile(
            &json!({"groups": ["g1", {"name": "g2", "launch_hook": "up"}]}),
            &states(),
        )
        .unwrap();
        assert_eq!(spec.rule, DEFAULT_RULE);
        assert_eq!(spec.stale_after, DEFAULT_STALE_AFTER);
        assert_eq!(spec.heartbeat_within, DEFAULT_HEARTBEAT_WITHIN);
        assert_eq!(spec.complete_after, None);
        assert_eq!(spec.gone, Gone::Report);
        assert_eq!(spec.result_for(LifecycleTransition::Launching), None);
        assert_eq!(
            spec.groups[0].hook_for(LifecycleTransition::Launching),
            None
        );
        assert_eq!(
            spec.group("g2")
                .and_then(|g| g.hook_for(LifecycleTransition::Launching)),
            Some("up")
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let errors = compile(
            &json!({
                "rule": "ready",
                "groups": ["g", {"name": ""}, "g", 3, {"name": "h", "launch_hook": 1, "colour": "x"}],
                "stale_after_seconds": 600,
                "complete_after_seconds": 300,
                "heartbeat_within_seconds": 0,
                "gone": "delete",
                "result": {"launching": "continue", "other": "ABANDON"},
                "wat": true,
            }),
            &states(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        for f in [
            "wat",
            "rule",
            "groups[1].name",
            "groups[2].name",
            "groups[3]",
            "groups[4].colour",
            "groups[4].launch_hook",
            "heartbeat_within_seconds",
            "complete_after_seconds",
            "gone",
            "result.other",
            "result.launching",
        ] {
            assert!(fields.contains(&f), "{f} not named in {errors:?}");
        }
        assert_eq!(fields.len(), 12, "{errors:?}");
    }

    #[test]
    fn groups_are_required_and_the_shape_is_a_mapping() {
        for v in [json!({}), json!({"groups": []}), json!({"groups": "g"})] {
            let errors = compile(&v, &states()).unwrap_err();
            assert_eq!(errors[0].0, "groups", "{v}");
        }
        assert_eq!(compile(&json!([1]), &states()).unwrap_err()[0].0, "");
    }

    #[test]
    fn a_full_section() {
        let spec = compile(
            &json!({"rule": "sweep", "groups": ["g"], "stale_after_seconds": 60,
                    "complete_after_seconds": 120, "heartbeat_within_seconds": 30,
                    "gone": "remove", "result": {"launching": "ABANDON", "terminating": "CONTINUE"}}),
            &states(),
        )
        .unwrap();
        assert_eq!(spec.rule, "sweep");
        assert_eq!(spec.complete_after, Some(Duration::from_secs(120)));
        assert_eq!(spec.gone, Gone::Remove);
        assert_eq!(
            spec.result_for(LifecycleTransition::Launching),
            Some(LifecycleResult::Abandon)
        );
        assert_eq!(
            spec.result_for(LifecycleTransition::Terminating),
            Some(LifecycleResult::Continue)
        );
    }
}
