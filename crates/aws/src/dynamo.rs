//! [`DynamoStore`]: nodes and command records in one DynamoDB table.
//!
//! Table design ([`DynamoStore::init`]): partition key `Ident` (S); a global secondary index on
//! `ItemType` (partition) and `Ident` (sort) for node queries by type, so finding or waiting
//! for one node is always a `GetItem`, never a `Scan`; TTL on `ExpiresAt` so command records
//! that no status event ever takes expire.
//!
//! Status writes are `UpdateItem`s conditional on the status read (a missing item or a missing
//! `ItemStatus` counts as `new`); a failed condition returns the item as it is
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`) and becomes the core's
//! [`Fault::Conflict`] with the status found. Taking a command record is one atomic
//! `DeleteItem` with `ReturnValues=ALL_OLD`. Every attribute name goes through
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
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use lifecycle::Fault;
use lifecycle::node::{
    ATTR_IDENT, ATTR_STATUS, ATTR_TYPE, CommandRecord, Node, STATUS_NEW, TYPE_COMMAND,
};
use lifecycle_runtime::capability::{CommandStore, NodeStore};
use lifecycle_runtime::poll_until;
use serde_json::{Map, Number, Value};

use crate::clock::TokioClock;
use crate::error::{fault, permanent};

/// How long [`DynamoStore::init`] waits for the table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(60);
/// How often [`DynamoStore::init`] looks whether the table is active.
const ACTIVE_POLL: Duration = Duration::from_secs(1);

/// The attribute that holds an item's expiry (epoch seconds) for DynamoDB's TTL.
pub const ATTR_EXPIRES: &str = "ExpiresAt";

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

fn status_in(item: Option<&HashMap<String, AttributeValue>>) -> String {
    match item.and_then(|i| i.get(ATTR_STATUS)) {
        Some(AttributeValue::S(s)) => s.clone(),
        _ => STATUS_NEW.to_owned(),
    }
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

fn key(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(ATTR_IDENT.to_owned(), AttributeValue::S(id.to_owned()))])
}

impl DynamoStore {
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
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(json_to_item(&node.to_item())))
            .send()
            .await
            .map_err(|e| fault("PutItem", &e))?;
        Ok(())
    }

    async fn set_status(&self, id: &str, expected: &str, new: &str) -> Result<(), Fault> {
        let condition = if expected == STATUS_NEW {
            "attribute_not_exists(#s) OR #s = :expected"
        } else {
            "#s = :expected"
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("SET #s = :new")
            .condition_expression(condition)
            .expression_attribute_names("#s", ATTR_STATUS)
            .expression_attribute_values(":expected", AttributeValue::S(expected.to_owned()))
            .expression_attribute_values(":new", AttributeValue::S(new.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        updated(result, |item| Fault::Conflict {
            id: id.to_owned(),
            expected: expected.to_owned(),
            found: status_in(item),
        })
    }

    async fn set_properties(&self, id: &str, properties: &Map<String, Value>) -> Result<(), Fault> {
        let props: Vec<(&String, &Value)> = properties
            .iter()
            .filter(|(k, _)| k.as_str() != ATTR_IDENT && k.as_str() != ATTR_STATUS)
            .collect();
        if props.is_empty() {
            return Ok(());
        }
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", ATTR_IDENT);
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

    async fn delete(&self, id: &str) -> Result<(), Fault> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .send()
            .await
            .map_err(|e| fault("DeleteItem", &e))?;
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
                nodes.push(Node::from_item(item_to_json(&id, item)?)?);
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

    async fn take_command(&self, id: &str) -> Result<Option<CommandRecord>, Fault> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            // Never delete an item that is not a command record (a node with that id), nor
            // a record past its expiry: TTL deletes lazily, up to days late (SPEC 9).
            .condition_expression(
                "attribute_not_exists(#id) OR (#t = :command AND (attribute_not_exists(#exp) OR #exp > :now))",
            )
            .expression_attribute_names("#id", ATTR_IDENT)
            .expression_attribute_names("#t", ATTR_TYPE)
            .expression_attribute_names("#exp", ATTR_EXPIRES)
            .expression_attribute_values(":command", AttributeValue::S(TYPE_COMMAND.to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(epoch_seconds(SystemTime::now()).to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return match e.as_service_error() {
                    Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                        // An expired record is as good as gone; anything else is not a record.
                        match self.raw(id).await? {
                            Some(item) if is_command(&item) => {
                                tracing::info!(command = %id, "command record expired; not taken");
                                Ok(None)
                            }
                            _ => Err(Fault::Corrupt {
                                id: id.to_owned(),
                                reason: "the item is not a command record".into(),
                            }),
                        }
                    }
                    _ => Err(fault("DeleteItem", &e)),
                };
            }
        };
        match out.attributes() {
            None => Ok(None),
            Some(attrs) if attrs.is_empty() => Ok(None),
            Some(attrs) => {
                let json = item_to_json(id, attrs)?;
                match CommandRecord::from_item(&json) {
                    Ok(r) => Ok(Some(r)),
                    Err(e) => {
                        // Already deleted: put it back untouched, so bad input changes nothing.
                        let _ = self
                            .client
                            .put_item()
                            .table_name(&self.table)
                            .set_item(Some(attrs.clone()))
                            .send()
                            .await;
                        Err(e)
                    }
                }
            }
        }
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
