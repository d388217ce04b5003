//! Keeping secrets out of logs, reports and output (SPEC 6, SPEC 9 "Secrets stay secret
//! downstream").
//!
//! The [`Redactor`] is the one place that decides what is secret. A node property is secret
//! when its name contains one of the redactor's words (`token`, `secret`, `password`,
//! `credential` by default, case-insensitive; operators can add more), or when the node
//! records it as secret-derived ([`ATTR_SECRET_PROPERTIES`]: a value rendered from a secret,
//! or a decrypted parameter, stored under a name that does not look secret).
//!
//! Text built from secret values is carried as [`Sensitive`]: the real text goes to AWS, only
//! the masked text is ever shown or stored. A `Sensitive` is *tainted* ([`Sensitive::is_secret`])
//! when any part of it came from a secret, and it remembers those parts so that an error
//! message that echoes one can be cleaned ([`Sensitive::scrub`], [`Fault::scrubbed`]).

use std::collections::BTreeSet;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::fault::Fault;
use crate::node::{ATTR_SECRET_PROPERTIES, Node};

/// The mask shown in place of a secret value.
pub const MASK: &str = "***";

/// Decides which property names are secret: by name (the words), and by what a node
/// recorded as secret-derived (the names, see [`Redactor::for_node`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    words: Vec<String>,
    /// Exact property names recorded as secret-derived.
    names: BTreeSet<String>,
    /// Every property is secret: a node whose record of secret names is unreadable.
    all: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            words: ["token", "secret", "password", "credential"]
                .map(str::to_owned)
                .to_vec(),
            names: BTreeSet::new(),
            all: false,
        }
    }
}

impl Redactor {
    /// The default words plus `extra` (matched case-insensitively as substrings).
    pub fn with_extra<I, S>(extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Redactor::default().extended(extra)
    }

    /// These words plus `extra`: a redactor an embedding program set stays in force when a
    /// configuration adds its own words.
    pub fn extended<I, S>(mut self, extra: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for w in extra {
            let w = w.as_ref().trim().to_lowercase();
            if !w.is_empty() && !self.words.contains(&w) {
                self.words.push(w);
            }
        }
        self
    }

    /// This redactor plus the exact property `names` (case-sensitive), whatever they look
    /// like: names a node recorded as holding secret-derived values.
    pub fn with_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The redactor for `node`'s properties: this one plus the names the node recorded as
    /// secret-derived ([`ATTR_SECRET_PROPERTIES`]). When that record is unreadable, every
    /// property of the node counts as secret: masking too much is the safe failure.
    pub fn for_node(&self, node: &Node) -> Redactor {
        match node.secret_properties() {
            Ok(names) => self.clone().with_names(names),
            Err(_) => Redactor {
                all: true,
                ..self.clone()
            },
        }
    }

    /// True when a property of this name holds a secret: its name contains a word, or it is
    /// one of the recorded names.
    pub fn is_secret(&self, name: &str) -> bool {
        if self.all || self.names.contains(name) {
            return true;
        }
        let name = name.to_lowercase();
        self.words.iter().any(|w| name.contains(w.as_str()))
    }

    /// True when `node`'s property `name` holds a secret, by its name or by the node's
    /// record of secret-derived properties. (`Ident`, `ItemStatus` and
    /// [`ATTR_SECRET_PROPERTIES`] itself, which holds names, never count as recorded.)
    pub fn is_secret_property(&self, node: &Node, name: &str) -> bool {
        if self.is_secret(name) {
            return true;
        }
        if name == ATTR_SECRET_PROPERTIES {
            return false;
        }
        match node.secret_properties() {
            Ok(names) => names.contains(name),
            Err(_) => !matches!(name, crate::node::ATTR_IDENT | crate::node::ATTR_STATUS),
        }
    }

    /// A copy of `properties` with every secret value replaced by [`MASK`], recursively.
    /// For a node's properties use the redactor [`Redactor::for_node`] gives.
    pub fn redact_map(&self, properties: &Map<String, Value>) -> Map<String, Value> {
        properties
            .iter()
            .map(|(k, v)| {
                let v = if self.is_secret(k) {
                    Value::String(MASK.into())
                } else {
                    self.redact_value(v)
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// A copy of `value` with every secret-named member of any object masked.
    pub fn redact_value(&self, value: &Value) -> Value {
        match value {
            Value::Object(m) => Value::Object(self.redact_map(m)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact_value(v)).collect()),
            other => other.clone(),
        }
    }
}

/// Text that may hold secret values: the real text (for AWS) and the masked text (for
/// everything else), and the secret parts of the real text. `Debug`, `Display` and
/// `Serialize` show only the masked text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sensitive {
    real: String,
    shown: String,
    /// The secret parts of `real`; empty when nothing in it came from a secret.
    secrets: Vec<String>,
}

impl Sensitive {
    /// Text with no secret in it.
    pub fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Sensitive {
            shown: text.clone(),
            real: text,
            secrets: Vec::new(),
        }
    }

    /// A secret value: shown as [`MASK`].
    pub fn secret(real: impl Into<String>) -> Self {
        let real = real.into();
        Sensitive {
            secrets: vec![real.clone()],
            real,
            shown: MASK.into(),
        }
    }

    /// Text whose secret parts were masked in `shown`. The whole of `real` counts as the
    /// secret part (for [`Sensitive::scrub`]), and the text is tainted.
    pub fn new(real: String, shown: String) -> Self {
        Sensitive {
            secrets: vec![real.clone()],
            real,
            shown,
        }
    }

    /// The real text: only for the call that sends it to AWS.
    pub fn expose(&self) -> &str {
        &self.real
    }

    /// The masked text: safe to log, report and store.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// True when any part of the text came from a secret (it is *tainted*): stored in a node
    /// property, it makes that property secret-derived.
    pub fn is_secret(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Appends another piece.
    pub fn push(&mut self, other: &Sensitive) {
        self.real.push_str(&other.real);
        self.shown.push_str(&other.shown);
        for s in &other.secrets {
            if !self.secrets.contains(s) {
                self.secrets.push(s.clone());
            }
        }
    }

    /// `text` with every secret part of this value replaced by [`MASK`]: for a message that
    /// a backend built from what it was sent (an AWS error that echoes a record value).
    pub fn scrub(&self, text: &str) -> String {
        scrub_all(std::iter::once(self), text)
    }
}

/// `text` with every secret part of every one of `values` replaced by [`MASK`], the longest
/// parts first (so a secret that contains another is masked whole).
pub fn scrub_all<'a>(values: impl IntoIterator<Item = &'a Sensitive>, text: &str) -> String {
    let mut parts: Vec<&str> = values
        .into_iter()
        .flat_map(|v| v.secrets.iter().map(String::as_str))
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        return text.to_owned();
    }
    parts.sort_by_key(|s| std::cmp::Reverse(s.len()));
    parts.dedup();
    let mut out = text.to_owned();
    for p in parts {
        if out.contains(p) {
            out = out.replace(p, MASK);
        }
    }
    out
}

impl Fault {
    /// This fault with every secret part of `values` masked in its text: what a task does to
    /// an error of a capability it sent those values to, before anyone shows it.
    pub fn scrubbed<'a>(self, values: impl IntoIterator<Item = &'a Sensitive> + Clone) -> Fault {
        let s = |text: String| scrub_all(values.clone(), &text);
        match self {
            Fault::Service {
                operation,
                code,
                status,
                message,
                kind,
            } => Fault::Service {
                operation,
                code,
                status,
                message: s(message),
                kind,
            },
            Fault::Corrupt { id, reason } => Fault::Corrupt {
                id,
                reason: s(reason),
            },
            Fault::Task { message, kind } => Fault::Task {
                message: s(message),
                kind,
            },
            other @ (Fault::Conflict { .. } | Fault::MissingNode { .. }) => other,
        }
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.shown, f)
    }
}

impl std::fmt::Display for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Serialize for Sensitive {
    /// Serialises as the masked text.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_words_match_case_insensitively() {
        let r = Redactor::default();
        for name in [
            "WorkerToken",
            "db_PASSWORD",
            "ClientSecret",
            "AwsCredentials",
        ] {
            assert!(r.is_secret(name), "{name}");
        }
        assert!(!r.is_secret("InstanceIp"));
    }

    #[test]
    fn extra_words_and_nested_values_are_masked() {
        let r = Redactor::with_extra(["apikey"]);
        let Value::Object(m) =
            json!({"ApiKey": "k", "nested": {"JoinToken": "t", "ok": 1}, "InstanceIp": "10.0.0.1"})
        else {
            unreachable!()
        };
        let out = r.redact_map(&m);
        assert_eq!(
            Value::Object(out),
            json!({"ApiKey": "***", "nested": {"JoinToken": "***", "ok": 1}, "InstanceIp": "10.0.0.1"})
        );
    }

    fn node(properties: Value) -> Node {
        let Value::Object(properties) = properties else {
            unreachable!()
        };
        Node {
            id: "i-1".into(),
            status: "ready".into(),
            properties,
        }
    }

    #[test]
    fn a_node_s_recorded_names_are_secret_whatever_they_look_like() {
        let r = Redactor::default();
        let n = node(json!({"JoinCommand": "join x", "InstanceIp": "10.0.0.1",
            "SecretProperties": ["JoinCommand"]}));
        assert!(r.is_secret_property(&n, "JoinCommand"));
        assert!(!r.is_secret_property(&n, "InstanceIp"));
        assert!(!r.is_secret("JoinCommand"), "only for that node");
        let shown = r.for_node(&n).redact_map(&n.properties);
        assert_eq!(shown["JoinCommand"], "***");
        assert_eq!(shown["InstanceIp"], "10.0.0.1");
    }

    #[test]
    fn an_unreadable_record_masks_every_property() {
        let r = Redactor::default();
        let n = node(json!({"JoinCommand": "join x", "SecretProperties": "JoinCommand"}));
        assert!(r.is_secret_property(&n, "InstanceIp"));
        assert!(!r.is_secret_property(&n, "Ident"));
        let shown = r.for_node(&n).redact_map(&n.properties);
        assert_eq!(shown["JoinCommand"], "***");
    }

    #[test]
    fn taint_survives_concatenation_and_scrubs_what_echoes_it() {
        let mut s = Sensitive::plain("join --token ");
        assert!(!s.is_secret());
        s.push(&Sensitive::secret("SWMTKN-1"));
        s.push(&Sensitive::plain(" 10.0.0.1"));
        assert!(s.is_secret());
        assert_eq!(s.shown(), "join --token *** 10.0.0.1");
        assert_eq!(s.expose(), "join --token SWMTKN-1 10.0.0.1");
        assert_eq!(
            s.scrub("bad value 'SWMTKN-1' in 'join --token SWMTKN-1 10.0.0.1'"),
            "bad value '***' in 'join --token *** 10.0.0.1'"
        );
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!("join --token *** 10.0.0.1")
        );
        let f = Fault::Service {
            operation: "ChangeResourceRecordSets".into(),
            code: Some("InvalidChangeBatch".into()),
            status: Some(400),
            message: "encountered with 'SWMTKN-1'".into(),
            kind: crate::fault::FaultKind::Invalid,
        };
        assert_eq!(
            f.scrubbed([&s]).to_string(),
            "ChangeResourceRecordSets: InvalidChangeBatch: encountered with '***'"
        );
        assert_eq!(
            Fault::permanent("x SWMTKN-1")
                .scrubbed([&Sensitive::plain("SWMTKN-1")])
                .to_string(),
            "x SWMTKN-1",
            "plain text is not a secret"
        );
    }

    #[test]
    fn sensitive_never_prints_the_real_text() {
        let s = Sensitive::new("join SWMTKN-1".into(), "join ***".into());
        assert_eq!(format!("{s} {s:?}"), "join *** \"join ***\"");
        assert_eq!(s.expose(), "join SWMTKN-1");
    }
}
