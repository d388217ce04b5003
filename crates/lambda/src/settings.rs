//! The function's settings, from its environment (SPEC 8), each checked with an error that
//! names the variable: a bad value fails the init, with every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use lifecycle::config::declared::EXECUTION_TIMEOUT_MAX;
use serde_json::{Map, Value};

/// One problem with the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// What the function reads from its environment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// `LIFECYCLE_CONFIG`: the configuration file; default `lifecycle.yaml` beside `bootstrap`.
    pub config: PathBuf,
    /// `LIFECYCLE_TABLE`: the DynamoDB state table (required).
    pub table: String,
    /// `LIFECYCLE_DEADLINE_MARGIN_MS`: every wait ends this long before the invocation's
    /// deadline (default 5000 ms).
    pub deadline_margin: Duration,
    /// `LIFECYCLE_WAIT_TIMEOUT_SECONDS`: how long a launch waits for cloud-init (default 300 s).
    pub wait_timeout: Duration,
    /// `LIFECYCLE_OPERATION_TIMEOUT_MS`: one AWS operation, retries included (default 30000).
    pub operation_timeout: Duration,
    /// `LIFECYCLE_ATTEMPT_TIMEOUT_MS`: one attempt of an AWS operation (default 10000).
    pub attempt_timeout: Duration,
    /// `LIFECYCLE_COMMAND_TIMEOUT_SECONDS`: SSM's `executionTimeout` for a command whose task
    /// sets none (default 600 s; at most 172800).
    pub command_timeout: Duration,
    /// `LIFECYCLE_MAX_TRANSIENT_ATTEMPTS`: deliveries in a row that may end with a transient
    /// fault before it is handled as a permanent one (default 3, at least 1).
    pub max_transient_attempts: u32,
    /// `LIFECYCLE_COMMAND_LOG_GROUP`: the CloudWatch Logs group commands' output goes to
    /// (unset or empty: none).
    pub command_log_group: Option<String>,
    /// `LIFECYCLE_REMEMBER_SECONDS`: how long a processed event is remembered, so a
    /// redelivery is recognised as a duplicate (default 86400, at least 60; SPEC 9).
    pub remember: Duration,
    /// `LIFECYCLE_BUSY_WAIT_SECONDS`: how long an event waits at most for another invocation
    /// that holds its node or processes the same event (default 10).
    pub busy_wait: Duration,
    /// `LIFECYCLE_DEFAULT_METADATA`: a JSON object merged under each lifecycle event's
    /// `NotificationMetadata` (the event's keys win).
    pub default_metadata: Map<String, Value>,
    /// `AWS_LAMBDA_FUNCTION_NAME`: the metrics' `Function` dimension.
    pub function_name: String,
}

impl Settings {
    /// Reads the settings through `var` (the process environment in `bootstrap`); `beside`
    /// is the folder of the running binary, where the configuration sits by default.
    ///
    /// # Errors
    /// Every variable that is missing or malformed, each named.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        beside: PathBuf,
    ) -> Result<Self, Vec<SettingError>> {
        let mut errors = Vec::new();
        let mut millis = |variable: &'static str, default: u64| -> Duration {
            number(&var, variable, &mut errors)
                .map_or(Duration::from_millis(default), Duration::from_millis)
        };
        let deadline_margin = millis("LIFECYCLE_DEADLINE_MARGIN_MS", 5_000);
        let operation_timeout = millis("LIFECYCLE_OPERATION_TIMEOUT_MS", 30_000);
        let attempt_timeout = millis("LIFECYCLE_ATTEMPT_TIMEOUT_MS", 10_000);
        let wait_timeout = number(&var, "LIFECYCLE_WAIT_TIMEOUT_SECONDS", &mut errors)
            .map_or(Duration::from_secs(300), Duration::from_secs);
        let command_timeout = match number(&var, "LIFECYCLE_COMMAND_TIMEOUT_SECONDS", &mut errors) {
            None => lifecycle_aws::DEFAULT_EXECUTION_TIMEOUT,
            Some(s) if (1..=EXECUTION_TIMEOUT_MAX).contains(&s) => Duration::from_secs(s),
            Some(s) => {
                errors.push(SettingError {
                    variable: "LIFECYCLE_COMMAND_TIMEOUT_SECONDS",
                    problem: format!("must be between 1 and {EXECUTION_TIMEOUT_MAX}, not {s}"),
                });
                lifecycle_aws::DEFAULT_EXECUTION_TIMEOUT
            }
        };
        let max_transient_attempts =
            match number(&var, "LIFECYCLE_MAX_TRANSIENT_ATTEMPTS", &mut errors) {
                None => 3,
                Some(n @ 1..=1000) => u32::try_from(n).unwrap_or(3),
                Some(n) => {
                    errors.push(SettingError {
                        variable: "LIFECYCLE_MAX_TRANSIENT_ATTEMPTS",
                        problem: format!("must be between 1 and 1000, not {n}"),
                    });
                    3
                }
            };
        let remember = match number(&var, "LIFECYCLE_REMEMBER_SECONDS", &mut errors) {
            None => Duration::from_secs(86_400),
            Some(s) if s >= 60 => Duration::from_secs(s),
            Some(s) => {
                errors.push(SettingError {
                    variable: "LIFECYCLE_REMEMBER_SECONDS",
                    problem: format!("must be at least 60, not {s}"),
                });
                Duration::from_secs(86_400)
            }
        };
        let busy_wait = number(&var, "LIFECYCLE_BUSY_WAIT_SECONDS", &mut errors)
            .map_or(Duration::from_secs(10), Duration::from_secs);
        if attempt_timeout > operation_timeout {
            errors.push(SettingError {
                variable: "LIFECYCLE_ATTEMPT_TIMEOUT_MS",
                problem: format!(
                    "{} ms is longer than the whole operation's {} ms (LIFECYCLE_OPERATION_TIMEOUT_MS)",
                    attempt_timeout.as_millis(),
                    operation_timeout.as_millis()
                ),
            });
        }
        let table = match var("LIFECYCLE_TABLE").filter(|t| !t.trim().is_empty()) {
            Some(t) => t,
            None => {
                errors.push(SettingError {
                    variable: "LIFECYCLE_TABLE",
                    problem: "required: the DynamoDB state table's name".into(),
                });
                String::new()
            }
        };
        let default_metadata = match var("LIFECYCLE_DEFAULT_METADATA") {
            None => Map::new(),
            Some(text) if text.trim().is_empty() => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    errors.push(SettingError {
                        variable: "LIFECYCLE_DEFAULT_METADATA",
                        problem: format!("must be a JSON object, not {other}"),
                    });
                    Map::new()
                }
                Err(e) => {
                    errors.push(SettingError {
                        variable: "LIFECYCLE_DEFAULT_METADATA",
                        problem: format!("not JSON: {e}"),
                    });
                    Map::new()
                }
            },
        };
        let config = var("LIFECYCLE_CONFIG")
            .filter(|p| !p.trim().is_empty())
            .map_or_else(|| beside.join("lifecycle.yaml"), PathBuf::from);
        let function_name =
            var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "lifecycle".to_owned());
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            config,
            table,
            deadline_margin,
            wait_timeout,
            operation_timeout,
            attempt_timeout,
            command_timeout,
            max_transient_attempts,
            remember,
            busy_wait,
            command_log_group: var("LIFECYCLE_COMMAND_LOG_GROUP").filter(|g| !g.trim().is_empty()),
            default_metadata,
            function_name,
        })
    }
}

/// A whole number from `variable`, when it is set.
fn number(
    var: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    errors: &mut Vec<SettingError>,
) -> Option<u64> {
    let text = var(variable)?;
    match text.trim().parse::<u64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(SettingError {
                variable,
                problem: format!("{text:?} is not a whole number"),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Settings, Vec<SettingError>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_env(|k| map.get(k).cloned(), PathBuf::from("/var/task"))
    }

    #[test]
    fn defaults_and_the_configuration_beside_the_binary() {
        let s = read(&[("LIFECYCLE_TABLE", "state")]).unwrap();
        assert_eq!(s.table, "state");
        assert_eq!(s.config, PathBuf::from("/var/task/lifecycle.yaml"));
        assert_eq!(s.deadline_margin, Duration::from_secs(5));
        assert_eq!(s.wait_timeout, Duration::from_secs(300));
        assert_eq!(s.operation_timeout, Duration::from_secs(30));
        assert_eq!(s.attempt_timeout, Duration::from_secs(10));
        assert_eq!(s.command_timeout, Duration::from_secs(600));
        assert_eq!(s.max_transient_attempts, 3);
        assert_eq!(s.remember, Duration::from_secs(86_400));
        assert_eq!(s.busy_wait, Duration::from_secs(10));
        assert!(s.default_metadata.is_empty());
    }

    #[test]
    fn every_bad_variable_is_named_at_once() {
        let errors = read(&[
            ("LIFECYCLE_DEADLINE_MARGIN_MS", "five"),
            ("LIFECYCLE_DEFAULT_METADATA", "[1]"),
            ("LIFECYCLE_OPERATION_TIMEOUT_MS", "1000"),
            ("LIFECYCLE_ATTEMPT_TIMEOUT_MS", "2000"),
            ("LIFECYCLE_COMMAND_TIMEOUT_SECONDS", "0"),
            ("LIFECYCLE_REMEMBER_SECONDS", "5"),
        ])
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "LIFECYCLE_DEADLINE_MARGIN_MS: \"five\" is not a whole number",
                "LIFECYCLE_COMMAND_TIMEOUT_SECONDS: must be between 1 and 172800, not 0",
                "LIFECYCLE_REMEMBER_SECONDS: must be at least 60, not 5",
                "LIFECYCLE_ATTEMPT_TIMEOUT_MS: 2000 ms is longer than the whole operation's 1000 ms (LIFECYCLE_OPERATION_TIMEOUT_MS)",
                "LIFECYCLE_TABLE: required: the DynamoDB state table's name",
                "LIFECYCLE_DEFAULT_METADATA: must be a JSON object, not [1]",
            ]
        );
    }

    #[test]
    fn metadata_and_paths_are_taken_as_given() {
        let s = read(&[
            ("LIFECYCLE_TABLE", "t"),
            ("LIFECYCLE_CONFIG", "/opt/conf.yaml"),
            ("LIFECYCLE_DEFAULT_METADATA", r#"{"cluster": "blue"}"#),
            ("LIFECYCLE_WAIT_TIMEOUT_SECONDS", "0"),
        ])
        .unwrap();
        assert_eq!(s.config, PathBuf::from("/opt/conf.yaml"));
        assert_eq!(s.default_metadata["cluster"], "blue");
        assert_eq!(s.wait_timeout, Duration::ZERO);
    }
}
