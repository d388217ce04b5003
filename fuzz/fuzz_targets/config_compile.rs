//! Fuzz target: configuration compile from YAML, `lifecycle::config::Definition::from_yaml`,
//! the entry `lifecycle validate`, the CLI's other commands and the Lambda use.
//!
//! Properties beyond "no panic":
//! - compiling is deterministic, and agrees with the two steps done apart
//!   (`RawConfig::from_yaml`, then `Definition::compile`);
//! - a refused configuration has at least one error, and every error a non-empty message;
//! - a compiled definition answers every accessor (each state's id and name, each candidate
//!   resolved, each task and condition), serialises to JSON, and lists its unregistered names;
//! - round trip: the shape-checked configuration, written back as YAML, checks to the same
//!   `RawConfig` and compiles to an equal `Definition`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifecycle::config::{ConfigErrors, Definition, RawConfig};
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let compiled = Definition::from_yaml(text);
    assert_eq!(
        compiled,
        Definition::from_yaml(text),
        "compile is not deterministic"
    );
    let def = match compiled {
        Err(errors) => {
            check_errors(&errors);
            return;
        }
        Ok(def) => def,
    };

    let raw = RawConfig::from_yaml(text).expect("a compiled configuration has a good shape");
    assert_eq!(
        Definition::compile(&raw).as_ref(),
        Ok(&def),
        "two steps != one"
    );

    for (i, name) in def.states().iter().enumerate() {
        let id = def.state_id(name).expect("every state has an id");
        assert_eq!(id.index(), i);
        assert_eq!(def.state_name(id), name);
        for c in def.candidates(id) {
            let (t, g) = def.resolve(*c);
            assert!(t.sources.contains(&id));
            assert!(!g.name.is_empty());
        }
    }
    assert_eq!(def.state_name(def.initial()), def.initial_state());
    assert_eq!(def.state_name(def.failure()), "failure");
    for (id, name, _) in def.tasks() {
        assert_eq!(def.task_name(id), name);
    }
    for (id, name, _) in def.conditions() {
        assert_eq!(def.condition_name(id), name);
    }
    for e in def.unregistered(|_| None) {
        assert!(!e.to_string().is_empty() && !e.message.is_empty());
    }
    serde_json::to_string(&def).expect("a definition serialises");

    // Round trip through YAML.
    let yaml = serde_norway::to_string(&to_value(&raw)).expect("JSON data serialises as YAML");
    let again = RawConfig::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("written back, the configuration is refused: {e}\n{yaml}"));
    assert_eq!(again, raw, "RawConfig YAML round trip\n{yaml}");
    let recompiled = Definition::from_yaml(&yaml)
        .unwrap_or_else(|e| panic!("written back, the definition is refused: {e}\n{yaml}"));
    assert_eq!(recompiled, def, "Definition YAML round trip\n{yaml}");
});

fn check_errors(errors: &ConfigErrors) {
    assert!(!errors.0.is_empty(), "refused without an error");
    assert!(!errors.to_string().is_empty());
    for e in &errors.0 {
        assert!(!e.message.is_empty(), "empty message: {e:?}");
        assert!(!e.to_string().is_empty());
    }
}

/// A `RawConfig` as the YAML document that says it, every key written out.
fn to_value(raw: &RawConfig) -> Value {
    let transitions: Vec<Value> = raw
        .transitions
        .iter()
        .map(|t| {
            let triggers: Vec<Value> = t
                .triggers
                .iter()
                .map(|g| {
                    let mut trigger = json!({
                        "name": g.name,
                        "prepare": g.prepare,
                        "conditions": g.conditions,
                        "unless": g.unless,
                        "before": g.before,
                        "after": g.after,
                        "stop_after_trigger": g.stop_after_trigger,
                        "ignore_errors": g.ignore_errors,
                    });
                    if let Some(report) = &g.report {
                        trigger["report"] = report.clone();
                    }
                    trigger
                })
                .collect();
            json!({
                "source": t.source,
                "dest": t.dest,
                "triggers": triggers,
                "stop_after_state_change": t.stop_after_state_change,
            })
        })
        .collect();
    let mut top = Map::new();
    if let Some(initial) = &raw.initial_state {
        top.insert("initial_state".into(), json!(initial));
    }
    top.insert("transitions".into(), Value::Array(transitions));
    if !raw.tasks.is_empty() {
        let tasks: Map<String, Value> = raw
            .tasks
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        top.insert("tasks".into(), Value::Object(tasks));
    }
    if !raw.redact.is_empty() {
        top.insert("redact".into(), json!(raw.redact));
    }
    if let Some(report) = &raw.report {
        top.insert("report".into(), report.clone());
    }
    Value::Object(top)
}
