//! `route53`: UPSERT and DELETE record changes, applied as one change batch, or deferred with
//! `defer: true` until `apply_dns_changes`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Aliases, Query, template, templates};
use crate::config::template::Template;

/// What to do with a DNS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordAction {
    /// Create or replace.
    #[serde(rename = "UPSERT")]
    Upsert,
    /// Delete (the values and TTL must match the record).
    #[serde(rename = "DELETE")]
    Delete,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordParams {
    name: String,
    #[serde(rename = "type", default = "default_type")]
    record_type: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    ttl: Option<i64>,
}

fn default_type() -> String {
    "A".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Params {
    zone_id: String,
    #[serde(default = "default_ttl")]
    ttl: i64,
    #[serde(default)]
    upsert: Vec<RecordParams>,
    #[serde(default)]
    delete: Vec<RecordParams>,
    #[serde(default)]
    defer: bool,
    #[serde(default)]
    nodes: BTreeMap<String, Query>,
}

fn default_ttl() -> i64 {
    60
}

/// One record change, its name and values still templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecordTemplate {
    /// UPSERT or DELETE.
    pub action: RecordAction,
    /// The record's name.
    pub name: Template,
    /// The record type (`A`, `CNAME`, ...).
    pub record_type: String,
    /// The values.
    pub values: Vec<Template>,
    /// TTL in seconds.
    pub ttl: i64,
}

/// A checked `route53` declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Route53 {
    /// The hosted zone.
    pub zone_id: Template,
    /// The changes, upserts first.
    pub records: Vec<RecordTemplate>,
    /// Collect the changes for `apply_dns_changes` instead of applying them now.
    pub defer: bool,
    /// Node aliases for placeholders.
    pub aliases: Aliases,
}

impl Route53 {
    pub(super) fn new(p: Params) -> Result<Self, Vec<String>> {
        let aliases = Aliases::new(p.nodes)?;
        let names = aliases.names();
        let mut errors = Vec::new();
        if p.upsert.is_empty() && p.delete.is_empty() {
            errors.push("give at least one record in `upsert` or `delete`".into());
        }
        let zone_id = template(&p.zone_id, &names, "zone_id");
        let mut records = Vec::new();
        for (action, list, key) in [
            (RecordAction::Upsert, p.upsert, "upsert"),
            (RecordAction::Delete, p.delete, "delete"),
        ] {
            for (i, r) in list.into_iter().enumerate() {
                let what = format!("{key}[{i}]");
                let mut vals = r.values;
                vals.extend(r.value);
                if vals.is_empty() {
                    errors.push(format!("{what}: `value` or `values` is required"));
                }
                let name = template(&r.name, &names, &format!("{what}.name"));
                let values = templates(&vals, &names, &format!("{what}.values"));
                match (name, values) {
                    (Ok(name), Ok(values)) => records.push(RecordTemplate {
                        action,
                        name,
                        record_type: r.record_type,
                        values,
                        ttl: r.ttl.unwrap_or(p.ttl),
                    }),
                    (a, b) => {
                        errors.extend(a.err().unwrap_or_default());
                        errors.extend(b.err().unwrap_or_default());
                    }
                }
            }
        }
        match zone_id {
            Ok(zone_id) if errors.is_empty() => Ok(Route53 {
                zone_id,
                records,
                defer: p.defer,
                aliases,
            }),
            Ok(_) => Err(errors),
            Err(e) => {
                errors.extend(e);
                Err(errors)
            }
        }
    }
}
