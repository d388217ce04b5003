//! [`DynamoStore`]: nodes, command records and the delivery machinery (SPEC 9) in one
//! DynamoDB table.
//!
//! Table design ([`DynamoStore::init`]): partition key `Ident` (S); a global secondary index on
//! `ItemType` (partition) and `Ident` (sort) for node queries by type, so finding or waiting
//! for one node is always a `GetItem`, never a `Scan` (only the operator's listing scans);
//! TTL on `ExpiresAt` so command records no status event consumes, delivery records, send
//! guards and tombstones expire.
//!
//! Every write that decides is conditional, as [`lifecycle::delivery`] says (docs/AWS.md lists
//! each condition): status writes on the status read and the writer's lease (a missing item
//! or a missing `ItemStatus` counts as `new`); a failed condition returns the item as it is
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), and the core's decision reads it: our own
//! write whose response was lost, or the core's [`Fault::Conflict`] with the status found.
//! A command record is read, and consumed (`DeleteItem`) only once its event is processed.
//! Every attribute name goes through
//! `ExpressionAttributeNames`, so reserved words (`Status`, `Name`, `Token`, ...) work, and
//! values keep their types.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use lifecycle::Fault;
use lifecycle::delivery::{
    self, ATTR_COMMAND_ID, ATTR_DELIVERY, ATTR_LEASE_OWNER, ATTR_LEASE_UNTIL, ATTR_OUTCOME,
    ATTR_OWNER, ATTR_REMOVED, ATTR_RESUME, Begin, Claim, Claiming, DONE, EntryWrite, IN_PROGRESS,
    Lease, NodeWrite, Reservation, Resume, Written, epoch_ms, epoch_secs,
};
use lifecycle::node::{
    ATTR_IDENT, ATTR_STATUS, ATTR_TYPE, CommandRecord, Node, STATUS_NEW, TYPE_COMMAND,
    check_properties,
};
use lifecycle_runtime::capability::{CommandStore, Deliveries, NodeStore};
use lifecycle_runtime::poll_until;
use serde_json::{Map, Number, Value};

use crate::clock::TokioClock;
use crate::error::{fault, permanent};

/// How long [`DynamoStore::init`] waits for the table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(60);
/// How often [`DynamoStore::init`] looks whether the table is active.
const ACTIVE_POLL: Duration = Duration::from_secs(1);

/// The attribute that holds an item's expiry (epoch seconds) for DynamoDB's TTL.
pub use lifecycle::delivery::ATTR_EXPIRES;

/// The global secondary index on (`ItemType`, `Ident`).
pub const TYPE_INDEX: &str = "ItemType-Ident-index";

/// How long an untaken command record lives by default.
pub const COMMAND_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Nodes and command records in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    command_ttl: Duration,
    page_size: Option<i32>,
}

/// JSON → DynamoDB, keeping types: strings `S`, numbers `N`, booleans `BOOL`, null `NULL`,
/// lists `L`, objects `M`.
pub fn to_attribute(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attribute).collect()),
        Value::Object(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

/// DynamoDB → JSON. Sets become lists; binary values are refused (nothing we write has them).
///
/// # Errors
/// A message naming what could not be read.
pub fn from_attribute(av: &AttributeValue) -> Result<Value, String> {
    Ok(match av {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => Value::Number(parse_number(n)?),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => {
            Value::Array(l.iter().map(from_attribute).collect::<Result<_, _>>()?)
        }
        AttributeValue::M(m) => Value::Object(
            m.iter()
                .map(|(k, v)| from_attribute(v).map(|v| (k.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(
            ns.iter()
                .map(|n| parse_number(n).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err("binary or unknown attribute types are not supported".into()),
    })
}

fn parse_number(n: &str) -> Result<Number, String> {
    serde_json::from_str::<Number>(n).map_err(|_| format!("{n:?} is not a number"))
}

fn item_to_json(
    id: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Map<String, Value>, Fault> {
    item.iter()
        .map(|(k, v)| {
            from_attribute(v)
                .map(|v| (k.clone(), v))
                .map_err(|reason| Fault::Corrupt {
                    id: id.to_owned(),
                    reason: format!("attribute `{k}`: {reason}"),
                })
        })
        .collect()
}

fn json_to_item(item: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(k, v)| (k.clone(), to_attribute(v)))
        .collect()
}

/// The outcome of a conditional `UpdateItem`: a failed condition becomes
/// `on_condition(item as it is)`, any other failure a [`Fault::Service`].
fn updated(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    on_condition: impl FnOnce(Option<&HashMap<String, AttributeValue>>) -> Fault,
) -> Result<(), Fault> {
    let Err(e) = result else {
        return Ok(());
    };
    match e.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(c)) => Err(on_condition(c.item())),
        _ => Err(fault("UpdateItem", &e)),
    }
}

/// A raw table item.
type Raw = HashMap<String, AttributeValue>;

/// The outcome of a conditional write: `Ok(None)` written; `Ok(Some(item as it is))` when the
/// condition failed (an empty item when there is none); any other failure a
/// [`Fault::Service`] of `op`.
fn refused<T, E>(
    op: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
    condition_failed: impl Fn(&E) -> Option<Option<&Raw>>,
) -> Result<Option<Raw>, Fault>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let Err(e) = result else {
        return Ok(None);
    };
    match e.as_service_error().and_then(condition_failed) {
        Some(item) => Ok(Some(item.cloned().unwrap_or_default())),
        None => Err(fault(op, &e)),
    }
}

fn put_refused(
    result: Result<PutItemOutput, SdkError<PutItemError, HttpResponse>>,
) -> Result<Option<Raw>, Fault> {
    refused("PutItem", result, |e| match e {
        PutItemError::ConditionalCheckFailedException(c) => Some(c.item()),
        _ => None,
    })
}

fn update_refused(
    result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<Option<Raw>, Fault> {
    refused("UpdateItem", result, |e| match e {
        UpdateItemError::ConditionalCheckFailedException(c) => Some(c.item()),
        _ => None,
    })
}

fn delete_refused(
    result: Result<DeleteItemOutput, SdkError<DeleteItemError, HttpResponse>>,
) -> Result<Option<Raw>, Fault> {
    refused("DeleteItem", result, |e| match e {
        DeleteItemError::ConditionalCheckFailedException(c) => Some(c.item()),
        _ => None,
    })
}

/// True when a raw item holds nothing of a node: its key, and the lease or delivery entries
/// (`lifecycle::delivery::is_bare`).
fn is_bare(item: &Raw) -> bool {
    item.keys()
        .all(|k| k == ATTR_IDENT || delivery::is_internal(k))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(ATTR_IDENT.to_owned(), AttributeValue::S(id.to_owned()))])
}

impl DynamoStore {
    /// Deletes the item a claim created, if nothing of a node was written to it since (no
    /// status, no type, no lease).
    async fn delete_bare(&self, id: &str) -> Result<(), Fault> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .condition_expression(
                "attribute_not_exists(#s) AND attribute_not_exists(#t) AND attribute_not_exists(#lo)",
            )
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_names("#t", ATTR_TYPE)
            .expression_attribute_names("#lo", ATTR_LEASE_OWNER)
            .send()
            .await;
        delete_refused(result)?;
        Ok(())
    }

    /// A store on `table`.
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        DynamoStore {
            client: Client::new(config),
            table: table.to_owned(),
            command_ttl: COMMAND_TTL,
            page_size: None,
        }
    }

    /// A store using an existing client (tests, custom configuration).
    pub fn with_client(client: Client, table: &str) -> Self {
        DynamoStore {
            client,
            table: table.to_owned(),
            command_ttl: COMMAND_TTL,
            page_size: None,
        }
    }

    /// Limits each query page to `items` (DynamoDB's own limit is 1 MB a page); queries
    /// still return every item, page after page.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its key, type index and TTL, or checks an existing one;
    /// idempotent. Waits (bounded) until the table is active.
    ///
    /// # Errors
    /// A [`Fault::Service`]: from AWS, or a permanent one (no code) naming what is wrong when a
    /// table of that name exists with another key or without the type index; a transient
    /// [`Fault`] when the table does not become active in time.
    pub async fn init(&self) -> Result<(), Fault> {
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr_def(ATTR_IDENT)?)
            .attribute_definitions(attr_def(ATTR_TYPE)?)
            .key_schema(key_elem(ATTR_IDENT, KeyType::Hash)?)
            .global_secondary_indexes(type_index()?)
            .send()
            .await;
        match created {
            Ok(_) => tracing::info!(table = %self.table, "table created"),
            Err(e) => {
                if !matches!(
                    e.as_service_error(),
                    Some(CreateTableError::ResourceInUseException(_))
                ) {
                    return Err(fault("CreateTable", &e));
                }
                tracing::info!(table = %self.table, "table exists; checking it");
            }
        }
        self.wait_active().await?;
        self.check_layout().await?;
        // Enabling TTL that is already enabled is refused: look first.
        if self.ttl_enabled().await? {
            return Ok(());
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ATTR_EXPIRES)
                    .enabled(true)
                    .build()
                    .map_err(|e| permanent("TimeToLiveSpecification", e))?,
            )
            .send()
            .await
            .map_err(|e| fault("UpdateTimeToLive", &e))?;
        Ok(())
    }

    /// True when TTL is enabled (or being enabled) on [`ATTR_EXPIRES`].
    async fn ttl_enabled(&self) -> Result<bool, Fault> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| fault("DescribeTimeToLive", &e))?;
        Ok(out.time_to_live_description().is_some_and(|d| {
            d.attribute_name() == Some(ATTR_EXPIRES)
                && matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
        }))
    }

    async fn describe(&self) -> Result<TableDescription, Fault> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| fault("DescribeTable", &e))?
            .table
            .ok_or_else(|| permanent("DescribeTable", "the answer has no table description"))
    }

    async fn wait_active(&self) -> Result<(), Fault> {
        let until = SystemTime::now() + ACTIVE_WAIT;
        let waited = poll_until(&TokioClock, until, ACTIVE_POLL, || async {
            Ok(
                if self.describe().await?.table_status() == Some(&TableStatus::Active) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                },
            )
        })
        .await?;
        waited.map_err(|()| {
            Fault::transient(format!(
                "table {} did not become active within {} s",
                self.table,
                ACTIVE_WAIT.as_secs()
            ))
        })
    }

    async fn check_layout(&self) -> Result<(), Fault> {
        let t = self.describe().await?;
        let keys: Vec<(&str, &KeyType)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        if keys != [(ATTR_IDENT, &KeyType::Hash)] {
            return Err(permanent(
                "DescribeTable",
                format!(
                    "table {} has key {keys:?}, expected {ATTR_IDENT} (HASH) alone",
                    self.table
                ),
            ));
        }
        let has_index = t
            .global_secondary_indexes()
            .iter()
            .any(|i| i.index_name() == Some(TYPE_INDEX));
        if !has_index {
            return Err(permanent(
                "DescribeTable",
                format!(
                    "table {} has no index {TYPE_INDEX}; node queries need it",
                    self.table
                ),
            ));
        }
        Ok(())
    }
}

fn attr_def(name: &str) -> Result<AttributeDefinition, Fault> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| permanent("AttributeDefinition", e))
}

fn key_elem(name: &str, kind: KeyType) -> Result<KeySchemaElement, Fault> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| permanent("KeySchemaElement", e))
}

fn type_index() -> Result<GlobalSecondaryIndex, Fault> {
    GlobalSecondaryIndex::builder()
        .index_name(TYPE_INDEX)
        .key_schema(key_elem(ATTR_TYPE, KeyType::Hash)?)
        .key_schema(key_elem(ATTR_IDENT, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| permanent("GlobalSecondaryIndex", e))
}

#[async_trait]
impl NodeStore for DynamoStore {
    async fn get(&self, id: &str) -> Result<Option<Node>, Fault> {
        let Some(item) = self.raw(id).await? else {
            return Ok(None);
        };
        if is_command(&item) {
            return Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is a command record, not a node".into(),
            });
        }
        Node::from_item(item_to_json(id, &item)?).map(Some)
    }

    async fn put(&self, node: &Node) -> Result<(), Fault> {
        check_properties(&node.id, &node.properties)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(&node.to_item())))
            .send()
            .await
            .map_err(|e| fault("PutItem", &e))?;
        Ok(())
    }

    async fn claim(
        &self,
        id: &str,
        lease: &Lease,
        with: Claiming<'_>,
        now: SystemTime,
    ) -> Result<Claim, Fault> {
        let delivery = with.delivery;
        let mut update = String::from("SET #lo = :me, #lu = :until");
        let mut condition = String::from(
            "attribute_not_exists(#rm) AND (attribute_not_exists(#t) OR #t <> :command) \
             AND (attribute_not_exists(#lo) OR #lo = :me OR #lu <= :now)",
        );
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .expression_attribute_names("#lo", ATTR_LEASE_OWNER)
            .expression_attribute_names("#lu", ATTR_LEASE_UNTIL)
            .expression_attribute_names("#rm", ATTR_REMOVED)
            .expression_attribute_names("#t", ATTR_TYPE)
            .expression_attribute_values(":me", s(&lease.owner))
            .expression_attribute_values(":until", n(epoch_ms(lease.until)))
            .expression_attribute_values(":now", n(epoch_ms(now)))
            .expression_attribute_values(":command", s(TYPE_COMMAND));
        if let Some(entry_key) = delivery {
            // The event's delivery entry, begun in the same write: none yet, ours, or one
            // whose processing died (expired) — `lifecycle::delivery::begin`'s rule.
            update.push_str(", #d = :entry");
            condition.push_str(" AND (attribute_not_exists(#d) OR #d.#o = :me OR #d.#x < :nows)");
            let entry = HashMap::from([
                (ATTR_DELIVERY.to_owned(), s(IN_PROGRESS)),
                (ATTR_OWNER.to_owned(), s(&lease.owner)),
                (ATTR_EXPIRES.to_owned(), n(epoch_secs(lease.until) + 1)),
            ]);
            req = req
                .expression_attribute_names("#d", entry_key)
                .expression_attribute_names("#o", ATTR_OWNER)
                .expression_attribute_names("#x", ATTR_EXPIRES)
                .expression_attribute_values(":entry", AttributeValue::M(entry))
                .expression_attribute_values(":nows", n(epoch_secs(now)));
        }
        if let Some(waiting) = with.waiting.filter(|w| !w.is_empty()) {
            // Not while cloud-init runs (a missing item or status reads as `new`): refused,
            // the item found comes back as the read of the node.
            let names: Vec<String> = (0..waiting.len()).map(|i| format!(":w{i}")).collect();
            let missing = if waiting.iter().any(|w| w == STATUS_NEW) {
                "attribute_exists(#s) AND"
            } else {
                "attribute_not_exists(#s) OR"
            };
            condition.push_str(&format!(
                " AND ({missing} NOT (#s IN ({})))",
                names.join(", ")
            ));
            req = req.expression_attribute_names("#s", ATTR_STATUS);
            for (name, status) in names.iter().zip(waiting) {
                req = req.expression_attribute_values(name, s(status));
            }
        }
        let result = req
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let replaced = match &result {
            Ok(out) => Some(out.attributes().cloned().unwrap_or_default()),
            Err(_) => None,
        };
        let refused = update_refused(result)?;
        let raw = replaced.or_else(|| refused.clone()).unwrap_or_default();
        if is_command(&raw) {
            return Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is a command record, not a node".into(),
            });
        }
        let old = item_to_json(id, &raw)?;
        let old = (!old.is_empty()).then_some(old);
        // What the core's decision says of the item found: the claim it made, or what stopped
        // it (held, removed, the event done).
        let decided = delivery::claim(id, old.as_ref(), lease, with, now);
        let claimed = match (refused, decided) {
            (Some(_), Err(found)) => return Ok(found),
            (Some(_), Ok(_)) => {
                return Err(Fault::transient(format!(
                    "claim of {id}: the condition failed, then held for an item that allows it"
                )));
            }
            (None, Ok(claimed)) => claimed,
            (None, Err(found)) => {
                return Err(Fault::transient(format!(
                    "claim of {id}: written, though the item found refuses it ({found:?})"
                )));
            }
        };
        if let (Some(entry_key), Some(resume)) = (delivery, &claimed.resume) {
            // The entry replaced was committing a transition: it goes on the fresh entry
            // again, so that should this processing die too, the next one still resumes it.
            // Best effort: this processing resumes it either way.
            let write = NodeWrite {
                delivery: Some((entry_key.to_owned(), EntryWrite::Mark(resume.clone()))),
                ..NodeWrite::default()
            };
            if let Err(e) = self.write(id, &lease.owner, &write).await {
                tracing::warn!(node = %id, error = %e, "could not record the resumed transition again");
            }
        }
        let existed = old.as_ref().is_some_and(|o| !delivery::is_bare(o));
        delivery::claimed(claimed, existed)
    }

    async fn write(&self, id: &str, owner: &str, w: &NodeWrite) -> Result<(), Fault> {
        check_properties(id, &w.properties)?;
        let mut sets: Vec<String> = Vec::new();
        let mut removes: Vec<String> = Vec::new();
        let mut conditions = vec![
            "attribute_exists(#id)".to_owned(),
            "attribute_not_exists(#rm)".to_owned(),
            "#lo = :me".to_owned(),
        ];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .expression_attribute_names("#id", ATTR_IDENT)
            .expression_attribute_names("#rm", ATTR_REMOVED)
            .expression_attribute_names("#lo", ATTR_LEASE_OWNER)
            .expression_attribute_values(":me", s(owner));
        if let Some((expected, new)) = &w.status {
            sets.push("#s = :new".into());
            // The status written last, or already the new one (our own write, retried).
            conditions.push(if expected == STATUS_NEW {
                "(attribute_not_exists(#s) OR #s = :expected OR #s = :new)".into()
            } else {
                "(#s = :expected OR #s = :new)".into()
            });
            req = req
                .expression_attribute_names("#s", ATTR_STATUS)
                .expression_attribute_values(":expected", s(expected))
                .expression_attribute_values(":new", s(new));
        }
        let props = w.properties.iter().filter(|(k, _)| {
            k.as_str() != ATTR_IDENT && k.as_str() != ATTR_STATUS && !delivery::is_internal(k)
        });
        for (i, (k, v)) in props.enumerate() {
            sets.push(format!("#p{i} = :p{i}"));
            req = req
                .expression_attribute_names(format!("#p{i}"), k)
                .expression_attribute_values(format!(":p{i}"), to_attribute(v));
        }
        if let Some((entry_key, write)) = &w.delivery {
            conditions.push("attribute_exists(#d)".into());
            req = req.expression_attribute_names("#d", entry_key);
            let marker = |r: &Resume| {
                serde_json::to_value(r)
                    .map(|v| to_attribute(&v))
                    .map_err(|e| permanent("UpdateItem", format!("the resume marker: {e}")))
            };
            match write {
                EntryWrite::Mark(r) => {
                    sets.push("#d.#r = :r".into());
                    req = req
                        .expression_attribute_names("#r", ATTR_RESUME)
                        .expression_attribute_values(":r", marker(r)?);
                }
                EntryWrite::Done { outcome, expires } => {
                    sets.push("#d.#dl = :done, #d.#out = :outcome, #d.#x = :exp".into());
                    removes.push("#d.#r".into());
                    req = req
                        .expression_attribute_names("#dl", ATTR_DELIVERY)
                        .expression_attribute_names("#out", ATTR_OUTCOME)
                        .expression_attribute_names("#x", ATTR_EXPIRES)
                        .expression_attribute_names("#r", ATTR_RESUME)
                        .expression_attribute_values(":done", s(DONE))
                        .expression_attribute_values(":outcome", s(outcome))
                        .expression_attribute_values(":exp", n(epoch_secs(*expires)));
                }
                EntryWrite::Forget { now, resume } => {
                    sets.push("#d.#x = :past".into());
                    req = req
                        .expression_attribute_names("#x", ATTR_EXPIRES)
                        .expression_attribute_values(
                            ":past",
                            n(epoch_secs(*now).saturating_sub(1)),
                        );
                    if let Some(r) = resume {
                        sets.push("#d.#r = :r".into());
                        req = req
                            .expression_attribute_names("#r", ATTR_RESUME)
                            .expression_attribute_values(":r", marker(r)?);
                    }
                }
            }
        }
        for (i, k) in w.prune.iter().enumerate() {
            removes.push(format!("#q{i}"));
            req = req.expression_attribute_names(format!("#q{i}"), k);
        }
        if w.release {
            removes.push("#lo, #lu".into());
            req = req.expression_attribute_names("#lu", ATTR_LEASE_UNTIL);
        }
        let mut update = String::new();
        if !sets.is_empty() {
            update = format!("SET {}", sets.join(", "));
        }
        if !removes.is_empty() {
            update = format!("{update} REMOVE {}", removes.join(", "));
        }
        let result = req
            .update_expression(update.trim())
            .condition_expression(conditions.join(" AND "))
            .return_values(if w.release {
                ReturnValue::AllNew
            } else {
                ReturnValue::None
            })
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let bare = match &result {
            Ok(out) => out.attributes().is_some_and(is_bare),
            Err(_) => false,
        };
        if let Some(old) = update_refused(result)? {
            // The core decides what the item found means: our own write whose response was
            // lost (the SDK retried it), or a conflict.
            let old = item_to_json(id, &old)?;
            let found = (!old.is_empty()).then_some(&old);
            return match delivery::write_node(id, found, owner, w)? {
                Written::Unchanged => Ok(()),
                Written::Item(_) | Written::Delete => Err(Fault::transient(format!(
                    "write of {id}: the condition failed, then held for an item that allows it"
                ))),
            };
        }
        if bare {
            // The claim created the item and nothing of a node was written since.
            self.delete_bare(id).await?;
        }
        Ok(())
    }

    async fn release(&self, id: &str, owner: &str) -> Result<(), Fault> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("REMOVE #lo, #lu")
            .condition_expression("#lo = :me")
            .expression_attribute_names("#lo", ATTR_LEASE_OWNER)
            .expression_attribute_names("#lu", ATTR_LEASE_UNTIL)
            .expression_attribute_values(":me", s(owner))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let bare = match &result {
            Ok(out) => out.attributes().is_some_and(is_bare),
            Err(_) => false,
        };
        // Not ours any more (another holds it, or it was removed): nothing to release.
        if update_refused(result)?.is_some() {
            return Ok(());
        }
        if bare {
            // The claim created the item and nothing was written since: no node is left.
            self.delete_bare(id).await?;
        }
        Ok(())
    }

    async fn set_status(
        &self,
        id: &str,
        expected: &str,
        new: &str,
        owner: Option<&str>,
    ) -> Result<(), Fault> {
        let status = if expected == STATUS_NEW {
            "(attribute_not_exists(#s) OR #s = :expected)"
        } else {
            "#s = :expected"
        };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("SET #s = :new")
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_names("#rm", ATTR_REMOVED)
            .expression_attribute_values(":expected", s(expected))
            .expression_attribute_values(":new", s(new))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        req = match owner {
            Some(me) => req
                .condition_expression(format!(
                    "{status} AND attribute_not_exists(#rm) AND #lo = :me"
                ))
                .expression_attribute_names("#lo", ATTR_LEASE_OWNER)
                .expression_attribute_values(":me", s(me)),
            None => req.condition_expression(format!("{status} AND attribute_not_exists(#rm)")),
        };
        let Some(old) = update_refused(req.send().await)? else {
            return Ok(());
        };
        // The core decides what the item found means: our own write whose response was
        // lost (the SDK retried it), or a conflict.
        let old = item_to_json(id, &old)?;
        let found = (!old.is_empty()).then_some(&old);
        delivery::set_status(id, found, expected, new, owner).map(|_| ())
    }

    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        check_properties(id, properties)?;
        let props: Vec<(&String, &Value)> = properties
            .iter()
            .filter(|(k, _)| {
                k.as_str() != ATTR_IDENT && k.as_str() != ATTR_STATUS && !delivery::is_internal(k)
            })
            .collect();
        if props.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .condition_expression("attribute_exists(#id) AND attribute_not_exists(#rm)")
            .expression_attribute_names("#id", ATTR_IDENT)
            .expression_attribute_names("#rm", ATTR_REMOVED);
        let mut sets = Vec::with_capacity(props.len());
        for (i, (k, v)) in props.iter().enumerate() {
            sets.push(format!("#p{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#p{i}"), (*k).clone())
                .expression_attribute_values(format!(":v{i}"), to_attribute(v));
        }
        let result = req
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        updated(result, |_| Fault::MissingNode { id: id.to_owned() })
    }

    async fn remove(&self, id: &str, until: SystemTime) -> Result<(), Fault> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(&delivery::tombstone(id, until))))
            .send()
            .await
            .map_err(|e| fault("PutItem", &e))?;
        Ok(())
    }

    async fn by_type(&self, item_type: &str) -> Result<Vec<Node>, Fault> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(TYPE_INDEX)
            .key_condition_expression("#t = :t")
            .expression_attribute_names("#t", ATTR_TYPE)
            .expression_attribute_values(":t", AttributeValue::S(item_type.to_owned()))
            .set_limit(self.page_size)
            .into_paginator()
            .send();
        let mut nodes = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fault("Query", &e))?;
            for item in page.items() {
                let id = match item.get(ATTR_IDENT) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => "?".to_owned(),
                };
                // A malformed item of another node is logged and skipped (SPEC 9).
                match item_to_json(&id, item) {
                    Ok(json) => nodes.extend(Node::from_query_item(json)),
                    Err(e) => {
                        tracing::error!(error = %e, "a malformed item skipped by a node query")
                    }
                }
            }
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}

/// Seconds since the Unix epoch, as DynamoDB's TTL attribute holds them.
fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when a raw item is a command record.
fn is_command(item: &HashMap<String, AttributeValue>) -> bool {
    item.get(ATTR_TYPE)
        .and_then(|t| t.as_s().ok())
        .map(String::as_str)
        == Some(TYPE_COMMAND)
}

impl DynamoStore {
    /// Drops the delivery record `key` when its processing is done or it expired
    /// ([`lifecycle::delivery::may_replay`]), so an operator's replay of the event runs
    /// again; true when it was dropped.
    ///
    /// # Errors
    /// A [`Fault::Service`].
    pub async fn forget_for_replay(
        &self,
        key_: &str,
        node: Option<&str>,
        now: SystemTime,
    ) -> Result<bool, Fault> {
        if let Some(node) = node {
            // A lifecycle event's entry on its node (`lifecycle::delivery::drop_entry_for_replay`).
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(node)))
                .update_expression("REMOVE #d")
                .condition_expression("#d.#dl = :done OR #d.#x < :now")
                .expression_attribute_names("#d", key_)
                .expression_attribute_names("#dl", ATTR_DELIVERY)
                .expression_attribute_names("#x", ATTR_EXPIRES)
                .expression_attribute_values(":done", s(DONE))
                .expression_attribute_values(":now", n(epoch_secs(now)))
                .send()
                .await;
            return Ok(update_refused(result)?.is_none());
        }
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .condition_expression("#d = :done OR #exp < :now")
            .expression_attribute_names("#d", ATTR_DELIVERY)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":now", n(epoch_secs(now)))
            .send()
            .await;
        Ok(delete_refused(result)?.is_none())
    }

    /// Every item of the table, page after page (a `Scan`: for operators' listings such as
    /// `lifecycle nodes`, never for processing an event).
    ///
    /// # Errors
    /// A [`Fault::Service`]; [`Fault::Corrupt`] for an attribute that cannot be read.
    pub async fn items(&self) -> Result<Vec<Map<String, Value>>, Fault> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .set_limit(self.page_size)
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| fault("Scan", &e))?;
            for item in page.items() {
                let id = match item.get(ATTR_IDENT) {
                    Some(AttributeValue::S(s)) => s.clone(),
                    _ => "?".to_owned(),
                };
                items.push(item_to_json(&id, item)?);
            }
        }
        Ok(items)
    }

    /// One raw item (a consistent read).
    async fn raw(&self, id: &str) -> Result<Option<HashMap<String, AttributeValue>>, Fault> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| fault("GetItem", &e))?;
        Ok(out.item().cloned())
    }
}

#[async_trait]
impl CommandStore for DynamoStore {
    async fn put_command(&self, record: &CommandRecord) -> Result<(), Fault> {
        let mut item = json_to_item(&record.to_item());
        let expires = SystemTime::now()
            .checked_add(self.command_ttl)
            .map_or(0, epoch_seconds);
        item.insert(
            ATTR_EXPIRES.to_owned(),
            AttributeValue::N(expires.to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| fault("PutItem", &e))?;
        Ok(())
    }

    async fn get_command(&self, id: &str, now: SystemTime) -> Result<Option<CommandRecord>, Fault> {
        let Some(item) = self.raw(id).await? else {
            return Ok(None);
        };
        if !is_command(&item) {
            return Err(Fault::Corrupt {
                id: id.to_owned(),
                reason: "the item is not a command record".into(),
            });
        }
        let json = item_to_json(id, &item)?;
        // TTL deletes lazily, up to days late: a record past its expiry is gone (SPEC 9).
        if delivery::expired(&json, now) {
            tracing::info!(command = %id, "command record expired; not read");
            return Ok(None);
        }
        CommandRecord::from_item(&json).map(Some)
    }

    async fn delete_command(&self, id: &str) -> Result<(), Fault> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            // Never an item that is not a command record; a consumed record is gone already.
            .condition_expression("#t = :command")
            .expression_attribute_names("#t", ATTR_TYPE)
            .expression_attribute_values(":command", s(TYPE_COMMAND))
            .send()
            .await;
        delete_refused(result)?;
        Ok(())
    }

    async fn reserve_send(
        &self,
        key_: &str,
        owner: &str,
        expires: SystemTime,
        now: SystemTime,
    ) -> Result<Reservation, Fault> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_IDENT, s(key_))
            .item(ATTR_OWNER, s(owner))
            .item(ATTR_EXPIRES, n(epoch_secs(expires)))
            .condition_expression(
                "attribute_not_exists(#id) OR #exp < :now OR (#o = :me AND attribute_not_exists(#c))",
            )
            .expression_attribute_names("#id", ATTR_IDENT)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_names("#o", ATTR_OWNER)
            .expression_attribute_names("#c", ATTR_COMMAND_ID)
            .expression_attribute_values(":now", n(epoch_secs(now)))
            .expression_attribute_values(":me", s(owner))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Some(old) = put_refused(result)? else {
            return Ok(Reservation::Fresh);
        };
        let old = item_to_json(key_, &old)?;
        Ok(delivery::reserve(key_, Some(&old), owner, expires, now)
            .map_or_else(|found| found, |_| Reservation::Fresh))
    }

    async fn take_over_send(
        &self,
        key_: &str,
        owner: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(&delivery::take_over(
                None, key_, owner, expires,
            ))))
            .send()
            .await
            .map_err(|e| fault("PutItem", &e))?;
        Ok(())
    }

    async fn mark_sent(
        &self,
        key_: &str,
        command_id: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .update_expression("SET #c = :c, #exp = :exp")
            .expression_attribute_names("#c", ATTR_COMMAND_ID)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_values(":c", s(command_id))
            .expression_attribute_values(":exp", n(epoch_secs(expires)))
            .send()
            .await
            .map_err(|e| fault("UpdateItem", &e))?;
        Ok(())
    }

    async fn release_send(&self, key_: &str, owner: &str) -> Result<(), Fault> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .condition_expression("#o = :me AND attribute_not_exists(#c)")
            .expression_attribute_names("#o", ATTR_OWNER)
            .expression_attribute_names("#c", ATTR_COMMAND_ID)
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        delete_refused(result)?;
        Ok(())
    }
}

#[async_trait]
impl Deliveries for DynamoStore {
    async fn begin(&self, key_: &str, lease: &Lease, now: SystemTime) -> Result<Begin, Fault> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(ATTR_IDENT, s(key_))
            .item(ATTR_DELIVERY, s(IN_PROGRESS))
            .item(ATTR_OWNER, s(&lease.owner))
            .item(ATTR_EXPIRES, n(epoch_secs(lease.until) + 1))
            .condition_expression("attribute_not_exists(#id) OR #exp < :now OR #o = :me")
            .expression_attribute_names("#id", ATTR_IDENT)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_names("#o", ATTR_OWNER)
            .expression_attribute_values(":now", n(epoch_secs(now)))
            .expression_attribute_values(":me", s(&lease.owner))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let replaced = match &result {
            Ok(out) => out.attributes().cloned(),
            Err(_) => None,
        };
        let Some(old) = put_refused(result)? else {
            // What the replaced record (expired: its processing died) was committing.
            let replaced = replaced.map(|r| item_to_json(key_, &r)).transpose()?;
            return Ok(delivery::begun(replaced.as_ref()));
        };
        let old = item_to_json(key_, &old)?;
        Ok(delivery::begin(key_, Some(&old), lease, now)
            .map_or_else(|found| found, |_| Begin::Begun))
    }

    async fn mark(&self, key_: &str, owner: &str, resume: &Resume) -> Result<(), Fault> {
        let marker = serde_json::to_value(resume)
            .map_err(|e| permanent("UpdateItem", format!("the resume marker: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .update_expression("SET #r = :r")
            .condition_expression("#o = :me")
            .expression_attribute_names("#r", ATTR_RESUME)
            .expression_attribute_names("#o", ATTR_OWNER)
            .expression_attribute_values(":r", to_attribute(&marker))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        // Not ours any more: left alone.
        update_refused(result)?;
        Ok(())
    }

    async fn finish(
        &self,
        key_: &str,
        owner: &str,
        outcome: &str,
        expires: SystemTime,
    ) -> Result<(), Fault> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .update_expression("SET #d = :done, #out = :outcome, #exp = :exp")
            .condition_expression("#o = :me")
            .expression_attribute_names("#d", ATTR_DELIVERY)
            .expression_attribute_names("#out", ATTR_OUTCOME)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_names("#o", ATTR_OWNER)
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":exp", n(epoch_secs(expires)))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        // Not ours any more (it expired and another processing took it): left alone.
        update_refused(result)?;
        Ok(())
    }

    async fn forget(
        &self,
        key_: &str,
        owner: &str,
        now: SystemTime,
        keep_resume: bool,
    ) -> Result<(), Fault> {
        // Expired rather than deleted: the record keeps its `Resume` for the retry when the
        // committed transition's `after` tasks have not all run (`lifecycle::delivery::forget`).
        // TTL removes it later, as any expired item.
        let update = if keep_resume {
            "SET #exp = :past"
        } else {
            "SET #exp = :past REMOVE #r"
        };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(key_)))
            .update_expression(update)
            .condition_expression("#o = :me")
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_names("#o", ATTR_OWNER);
        if !keep_resume {
            req = req.expression_attribute_names("#r", ATTR_RESUME);
        }
        let result = req
            .expression_attribute_values(":past", n(epoch_secs(now).saturating_sub(1)))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        // Not ours any more (or gone): left alone.
        update_refused(result)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_values_round_trip_with_their_types() {
        let v = json!({"s": "x", "n": 60, "f": 1.5, "b": true, "z": null, "l": [1, "a"], "m": {"k": [false]}});
        let av = to_attribute(&v);
        assert_eq!(from_attribute(&av).unwrap(), v);
        assert_eq!(to_attribute(&json!(60)), AttributeValue::N("60".into()));
    }

    #[test]
    fn sets_read_as_lists_and_bad_numbers_are_named() {
        let ss = AttributeValue::Ss(vec!["a".into(), "b".into()]);
        assert_eq!(from_attribute(&ss).unwrap(), json!(["a", "b"]));
        assert!(
            from_attribute(&AttributeValue::N("x1".into()))
                .unwrap_err()
                .contains("not a number")
        );
    }
}
