//! Step 2: [`RawConfig`] in, [`Definition`] out — states interned, triggers ordered, every
//! task and condition name classified (built in, declared, or external), every problem
//! reported at once.

use std::collections::{BTreeMap, HashMap};

use super::builtin::{BuiltinTask, Predicate};
use super::declared::{self, Declared};
use super::definition::{
    Candidate, CondId, ConditionKind, Definition, Role, StateId, TaskId, TaskKind, Transition,
    Trigger,
};
use super::error::{ConfigError, ConfigErrorKind, ConfigErrors};
use super::raw::RawConfig;
use super::{FAILURE_STATE, RESERVED_TRIGGER};

impl Definition {
    /// Compiles a shape-checked configuration. Names that are neither built in nor declared in
    /// `tasks:` are kept as [`TaskKind::External`] / [`ConditionKind::External`]: the program
    /// that runs the definition binds them ([`Definition::unregistered`] lists what it lacks).
    ///
    /// # Errors
    /// Every problem at once, each naming the transition, trigger and key: the reserved
    /// trigger name, two transitions with one destination, an `initial_state` that is not a
    /// state, a declared task that is wrong or shadows a built-in, a task used as a condition
    /// or the other way round.
    pub fn compile(raw: &RawConfig) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut names = Names::declare(raw, &mut errors);
        let mut states = States::default();

        let mut dests: HashMap<&str, usize> = HashMap::new();
        let mut transitions = Vec::with_capacity(raw.transitions.len());
        for (i, t) in raw.transitions.iter().enumerate() {
            let label = format!(
                "transitions[{i}] ({} -> {})",
                t.source.join("|"),
                t.dest.as_deref().unwrap_or("null")
            );
            let sources: Vec<StateId> = t.source.iter().map(|s| states.intern(s)).collect();
            let dest = t.dest.as_deref().map(|d| states.intern(d));
            if let Some(d) = t.dest.as_deref() {
                match dests.get(d) {
                    Some(first) => errors.push(ConfigError {
                        kind: ConfigErrorKind::DuplicateDest,
                        location: format!("{label}, key dest"),
                        message: format!(
                            "destination `{d}` is already the destination of transitions[{first}]"
                        ),
                    }),
                    None => {
                        dests.insert(d, i);
                    }
                }
            }
            let mut triggers = Vec::with_capacity(t.triggers.len());
            for g in &t.triggers {
                let at = format!("{label}, trigger {}", g.name);
                if g.name == RESERVED_TRIGGER {
                    errors.push(ConfigError {
                        kind: ConfigErrorKind::ReservedName,
                        location: format!("{at}, key name"),
                        message: format!("`{RESERVED_TRIGGER}` is a reserved trigger name"),
                    });
                }
                let report = match g.report.as_ref().map(super::report::compile) {
                    None => None,
                    Some(Ok(spec)) => Some(spec),
                    Some(Err(message)) => {
                        errors.push(ConfigError {
                            kind: ConfigErrorKind::WrongType,
                            location: format!("{at}, key report"),
                            message,
                        });
                        None
                    }
                };
                triggers.push(Trigger {
                    report,
                    name: g.name.clone(),
                    prepare: names.tasks(&g.prepare, &at, "prepare", &mut errors),
                    conditions: names.conditions(&g.conditions, &at, "conditions", &mut errors),
                    unless: names.conditions(&g.unless, &at, "unless", &mut errors),
                    before: names.tasks(&g.before, &at, "before", &mut errors),
                    after: names.tasks(&g.after, &at, "after", &mut errors),
                    stop_after_trigger: g.stop_after_trigger,
                    ignore_errors: g.ignore_errors,
                });
            }
            transitions.push(Transition {
                sources,
                dest,
                triggers,
                stop_after_state_change: t.stop_after_state_change,
            });
        }
        let failure = states.intern(FAILURE_STATE);

        let initial = match &raw.initial_state {
            Some(s) => states.ids.get(s).copied().unwrap_or_else(|| {
                errors.push(ConfigError {
                    kind: ConfigErrorKind::UnknownState,
                    location: "key initial_state".into(),
                    message: format!("`{s}` is not a source or destination of any transition"),
                });
                StateId(0)
            }),
            None => transitions
                .first()
                .and_then(|t| t.sources.first().copied())
                .unwrap_or(StateId(0)),
        };

        let report = match raw.report.as_ref().map(super::report::compile) {
            None => None,
            Some(Ok(spec)) => Some(spec),
            Some(Err(message)) => {
                errors.push(ConfigError {
                    kind: ConfigErrorKind::WrongType,
                    location: "key report".into(),
                    message,
                });
                None
            }
        };
        let reconcile = match raw
            .reconcile
            .as_ref()
            .map(|v| super::reconcile::compile(v, &states.names))
        {
            None => None,
            Some(Ok(spec)) => Some(spec),
            Some(Err(problems)) => {
                errors.extend(problems.into_iter().map(|(field, message)| ConfigError {
                    kind: ConfigErrorKind::Reconcile,
                    location: if field.is_empty() {
                        "key reconcile".into()
                    } else {
                        format!("key reconcile.{field}")
                    },
                    message,
                }));
                None
            }
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let candidates = candidates(states.names.len(), &transitions);
        Ok(Definition {
            states: states.names,
            state_ids: states.ids,
            initial,
            failure,
            transitions,
            candidates,
            tasks: names.tasks,
            conditions: names.conditions,
            redact: raw.redact.clone(),
            report,
            reconcile,
        })
    }

    /// Parses and compiles YAML text in one go.
    ///
    /// # Errors
    /// Every shape problem ([`RawConfig::check`]) and every problem compiling the well-formed
    /// part ([`Definition::compile`]), together.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        let (raw, mut errors) = RawConfig::check_yaml(text)?;
        match Self::compile(&raw) {
            Ok(def) if errors.is_empty() => Ok(def),
            Ok(_) => Err(ConfigErrors(errors)),
            Err(ConfigErrors(more)) => {
                errors.extend(more);
                Err(ConfigErrors(errors))
            }
        }
    }
}

/// States in order of first appearance.
#[derive(Default)]
struct States {
    names: Vec<String>,
    ids: HashMap<String, StateId>,
}

impl States {
    fn intern(&mut self, name: &str) -> StateId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = StateId(self.names.len() as u32);
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// Task and condition names: the declared ones, then every name in first-use order with what
/// it stands for.
struct Names {
    declared: BTreeMap<String, Declared>,
    task_ids: HashMap<String, TaskId>,
    condition_ids: HashMap<String, CondId>,
    tasks: Vec<(String, TaskKind)>,
    conditions: Vec<(String, ConditionKind)>,
}

impl Names {
    /// Checks the `tasks:` section; a declared name may not shadow a built-in one.
    fn declare(raw: &RawConfig, errors: &mut Vec<ConfigError>) -> Self {
        let mut declared = BTreeMap::new();
        for (name, spec) in &raw.tasks {
            let at = format!("tasks.{name}");
            if BuiltinTask::from_name(name).is_some() || Predicate::from_name(name).is_some() {
                errors.push(ConfigError {
                    kind: ConfigErrorKind::DeclaredTask,
                    location: at,
                    message: format!("`{name}` is already a built-in name"),
                });
                continue;
            }
            match declared::build(name, spec) {
                Ok(d) => {
                    declared.insert(name.clone(), d);
                }
                Err(messages) => errors.extend(messages.into_iter().map(|m| ConfigError {
                    kind: ConfigErrorKind::DeclaredTask,
                    location: at.clone(),
                    message: m,
                })),
            }
        }
        Names {
            declared,
            task_ids: HashMap::new(),
            condition_ids: HashMap::new(),
            tasks: Vec::new(),
            conditions: Vec::new(),
        }
    }

    /// What `name` is known as, if it is built in or declared.
    fn known_role(&self, name: &str) -> Option<Role> {
        if BuiltinTask::from_name(name).is_some() {
            return Some(Role::Task);
        }
        if Predicate::from_name(name).is_some() {
            return Some(Role::Condition);
        }
        match self.declared.get(name)? {
            Declared::Task(_) => Some(Role::Task),
            Declared::Condition(_) => Some(Role::Condition),
        }
    }

    /// The role `name` already has: built in, declared, or from an earlier use of an external
    /// name.
    fn role(&self, name: &str) -> Option<Role> {
        self.known_role(name).or_else(|| {
            if self.task_ids.contains_key(name) {
                Some(Role::Task)
            } else if self.condition_ids.contains_key(name) {
                Some(Role::Condition)
            } else {
                None
            }
        })
    }

    /// Refuses a name used in the role it does not have.
    fn check_role(&self, name: &str, want: Role, location: String) -> Option<ConfigError> {
        match self.role(name) {
            Some(role) if role != want => Some(ConfigError {
                kind: ConfigErrorKind::WrongKind,
                location,
                message: if self.known_role(name).is_some() {
                    format!("`{name}` is a {}, not a {}", role.as_str(), want.as_str())
                } else {
                    format!(
                        "`{name}` is used as a {} elsewhere, so it cannot be a {}",
                        role.as_str(),
                        want.as_str()
                    )
                },
            }),
            _ => None,
        }
    }

    fn task(&mut self, name: &str) -> TaskId {
        if let Some(id) = self.task_ids.get(name) {
            return *id;
        }
        let kind = match (BuiltinTask::from_name(name), self.declared.get(name)) {
            (Some(b), _) => TaskKind::Builtin(b),
            (None, Some(Declared::Task(d))) => TaskKind::Declared(d.clone()),
            _ => TaskKind::External,
        };
        let id = TaskId(self.tasks.len() as u32);
        self.tasks.push((name.to_owned(), kind));
        self.task_ids.insert(name.to_owned(), id);
        id
    }

    fn condition(&mut self, name: &str) -> CondId {
        if let Some(id) = self.condition_ids.get(name) {
            return *id;
        }
        let kind = match (Predicate::from_name(name), self.declared.get(name)) {
            (Some(p), _) => ConditionKind::Builtin(p),
            (None, Some(Declared::Condition(d))) => ConditionKind::Declared(d.clone()),
            _ => ConditionKind::External,
        };
        let id = CondId(self.conditions.len() as u32);
        self.conditions.push((name.to_owned(), kind));
        self.condition_ids.insert(name.to_owned(), id);
        id
    }

    fn tasks(
        &mut self,
        names: &[String],
        at: &str,
        key: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Vec<TaskId> {
        let mut ids = Vec::with_capacity(names.len());
        for n in names {
            match self.check_role(n, Role::Task, format!("{at}, key {key}")) {
                Some(e) => errors.push(e),
                None => ids.push(self.task(n)),
            }
        }
        ids
    }

    fn conditions(
        &mut self,
        names: &[String],
        at: &str,
        key: &str,
        errors: &mut Vec<ConfigError>,
    ) -> Vec<CondId> {
        let mut ids = Vec::with_capacity(names.len());
        for n in names {
            match self.check_role(n, Role::Condition, format!("{at}, key {key}")) {
                Some(e) => errors.push(e),
                None => ids.push(self.condition(n)),
            }
        }
        ids
    }
}

/// The ways out of each state (SPEC 4.2): trigger names in order of first appearance anywhere
/// (a global order, never a hash's), then configuration order.
fn candidates(state_count: usize, transitions: &[Transition]) -> Vec<Vec<Candidate>> {
    let mut name_order: HashMap<&str, usize> = HashMap::new();
    for t in transitions {
        for g in &t.triggers {
            let next = name_order.len();
            name_order.entry(g.name.as_str()).or_insert(next);
        }
    }
    let mut out: Vec<Vec<Candidate>> = vec![Vec::new(); state_count];
    for (ti, t) in transitions.iter().enumerate() {
        for gi in 0..t.triggers.len() {
            for s in &t.sources {
                let list = &mut out[s.index()];
                let c = Candidate {
                    transition: ti as u32,
                    trigger: gi as u32,
                };
                if !list.contains(&c) {
                    list.push(c);
                }
            }
        }
    }
    for list in &mut out {
        list.sort_by_key(|c| {
            let g = &transitions[c.transition as usize].triggers[c.trigger as usize];
            (
                name_order
                    .get(g.name.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
                c.transition,
                c.trigger,
            )
        });
    }
    out
}
