//! Keeping secrets out of logs, reports and output (SPEC 6).
//!
//! A node property is secret when its name contains one of the [`Redactor`]'s words
//! (`token`, `secret`, `password`, `credential` by default, case-insensitive; operators can add
//! more). Text built from secret values is carried as [`Sensitive`]: the real text goes to AWS,
//! only the masked text is ever shown or stored.

use serde_json::{Map, Value};

/// The mask shown in place of a secret value.
pub const MASK: &str = "***";

/// Decides which property names are secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    words: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor {
            words: ["token", "secret", "password", "credential"]
                .map(str::to_owned)
                .to_vec(),
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

    /// True when a property of this name holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.words.iter().any(|w| name.contains(w.as_str()))
    }

    /// A copy of `properties` with every secret value replaced by [`MASK`], recursively.
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
/// everything else). `Debug` and `Display` show only the masked text.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive {
    real: String,
    shown: String,
}

impl Sensitive {
    /// Text with no secret in it.
    pub fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Sensitive {
            shown: text.clone(),
            real: text,
        }
    }

    /// Text whose secret parts were masked in `shown`.
    pub fn new(real: String, shown: String) -> Self {
        Sensitive { real, shown }
    }

    /// The real text: only for the call that sends it to AWS.
    pub fn expose(&self) -> &str {
        &self.real
    }

    /// The masked text: safe to log, report and store.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Appends another piece.
    pub fn push(&mut self, other: &Sensitive) {
        self.real.push_str(&other.real);
        self.shown.push_str(&other.shown);
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

    #[test]
    fn sensitive_never_prints_the_real_text() {
        let s = Sensitive::new("join SWMTKN-1".into(), "join ***".into());
        assert_eq!(format!("{s} {s:?}"), "join *** \"join ***\"");
        assert_eq!(s.expose(), "join SWMTKN-1");
    }
}
