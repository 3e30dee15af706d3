//! The lease table on DynamoDB: a row per group (partition key `group`, a
//! string), taken with a conditional PutItem and given back with a conditional
//! DeleteItem, so two invocations can never both believe they hold a group.
//!
//! `expires_at` is epoch seconds, the attribute the table's TTL reads: TTL
//! removes rows late (within days), so expiry is decided by the condition, and
//! TTL only keeps the table small.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;

use super::errors::{cloud_error, done};
use crate::cloud::lease::{Claim, Lease, LeaseTable};
use crate::cloud::notices::{Told, ToldMemory};
use crate::cloud::pause::{Pause, PauseBook};
use crate::cloud::{CloudError, Operation};

/// What DynamoDB answers a write whose condition does not hold.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// The lease table through the AWS SDK, in the function's own region.
#[derive(Clone, Debug)]
pub struct SdkLeases {
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl SdkLeases {
    pub fn new(conf: &aws_config::SdkConfig, table: &str) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(conf),
            table: table.to_owned(),
        }
    }

    /// The conditional PutItem: `false` when the group is held (by a lease
    /// that had not expired at `now`).
    async fn put(&self, lease: &Lease, now: DateTime<Utc>) -> Result<bool, CloudError> {
        const OP: Operation = Operation::PutItem;
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let answer = self
            .dynamodb
            .put_item()
            .table_name(&self.table)
            .item("group", s(&lease.group))
            .item("holder", s(&lease.holder))
            .item("incident", s(&lease.incident))
            .item(
                "expires_at",
                AttributeValue::N(lease.until.timestamp().to_string()),
            )
            .item(
                "until",
                s(&lease.until.to_rfc3339_opts(SecondsFormat::Secs, true)),
            )
            // `group` is a DynamoDB reserved word.
            .condition_expression("attribute_not_exists(#g) OR expires_at < :now")
            .expression_attribute_names("#g", "group")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .send()
            .await;
        match answer.map_err(|e| cloud_error(OP, e)) {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The row of `group`, read consistently (right after a failed condition).
    async fn row(&self, group: &str) -> Result<Option<Lease>, CloudError> {
        const OP: Operation = Operation::GetItem;
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key("group", AttributeValue::S(group.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| cloud_error(OP, e))?;
        out.item().map(|item| lease_of(group, item)).transpose()
    }
}

/// A row as a [`Lease`]; a row this code did not write is an error.
fn lease_of(group: &str, item: &HashMap<String, AttributeValue>) -> Result<Lease, CloudError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        Some(AttributeValue::N(v)) => Ok(v.clone()),
        _ => Err(CloudError::malformed(
            Operation::GetItem,
            format!("the lease of group {group} has no {name}"),
        )),
    };
    let expires: i64 = text("expires_at")?.parse().map_err(|_| {
        CloudError::malformed(
            Operation::GetItem,
            format!("the lease of group {group} has a bad expires_at"),
        )
    })?;
    Ok(Lease {
        group: group.to_owned(),
        holder: text("holder")?,
        incident: text("incident").unwrap_or_default(),
        until: DateTime::from_timestamp(expires, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

impl LeaseTable for SdkLeases {
    fn claim<'a>(
        &'a self,
        lease: &'a Lease,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Claim, CloudError>> {
        Box::pin(async move {
            if self.put(lease, now).await? {
                return Ok(Claim::Taken);
            }
            // Who holds it, read consistently; gone meanwhile: ask again.
            Ok(self
                .row(&lease.group)
                .await?
                .map_or(Claim::Freed, Claim::Held))
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<bool, CloudError>> {
        Box::pin(async move {
            const OP: Operation = Operation::DeleteItem;
            let answer = self
                .dynamodb
                .delete_item()
                .table_name(&self.table)
                .key("group", AttributeValue::S(lease.group.clone()))
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", AttributeValue::S(lease.holder.clone()))
                .send()
                .await;
            match answer.map_err(|e| cloud_error(OP, e)) {
                Ok(_) => Ok(true),
                Err(e) if e.code() == Some(CONDITION_FAILED) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}

/// The row beside a group's lease that keeps what its operators were told.
fn told_key(group: &str) -> AttributeValue {
    AttributeValue::S(format!("told#{group}"))
}

/// How long a told row outlives its last write (TTL): a group removed from
/// the deployment leaves nothing behind for long.
const TOLD_KEPT_DAYS: i64 = 30;

/// A told row's channels: `{channel: {fingerprint: S, at: N}}`.
fn told_of(item: &HashMap<String, AttributeValue>) -> Told {
    let Some(AttributeValue::M(channels)) = item.get("told") else {
        return Told::new();
    };
    channels
        .iter()
        .filter_map(|(channel, value)| {
            let AttributeValue::M(fields) = value else {
                return None;
            };
            let fingerprint = match fields.get("fingerprint") {
                Some(AttributeValue::S(f)) => f.clone(),
                _ => return None,
            };
            let at = match fields.get("at") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            }
            .and_then(|s| DateTime::from_timestamp(s, 0))?;
            Some((channel.clone(), (fingerprint, at)))
        })
        .collect()
}

impl ToldMemory for SdkLeases {
    fn told<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Told, CloudError>> {
        Box::pin(async move {
            let out = self
                .dynamodb
                .get_item()
                .table_name(&self.table)
                .key("group", told_key(group))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| cloud_error(Operation::GetItem, e))?;
            Ok(out.item().map(told_of).unwrap_or_default())
        })
    }

    fn remember<'a>(
        &'a self,
        group: &'a str,
        told: &'a Told,
    ) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            let channels = told
                .iter()
                .map(|(channel, (fingerprint, at))| {
                    let fields = HashMap::from([
                        (
                            "fingerprint".to_owned(),
                            AttributeValue::S(fingerprint.clone()),
                        ),
                        (
                            "at".to_owned(),
                            AttributeValue::N(at.timestamp().to_string()),
                        ),
                    ]);
                    (channel.clone(), AttributeValue::M(fields))
                })
                .collect();
            let expires = Utc::now().timestamp() + TOLD_KEPT_DAYS * 86_400;
            let answer = self
                .dynamodb
                .put_item()
                .table_name(&self.table)
                .item("group", told_key(group))
                .item("told", AttributeValue::M(channels))
                .item("expires_at", AttributeValue::N(expires.to_string()))
                .send()
                .await;
            done(Operation::PutItem, answer)
        })
    }
}

fn pause_key(group: &str) -> AttributeValue {
    AttributeValue::S(format!("pause#{group}"))
}

/// A pause row as a [`Pause`]; one this code did not write is an error.
fn pause_of(group: &str, item: &HashMap<String, AttributeValue>) -> Result<Pause, CloudError> {
    let text = |name: &str| match item.get(name) {
        Some(AttributeValue::S(v) | AttributeValue::N(v)) => Some(v.clone()),
        _ => None,
    };
    let until = text("until_epoch")
        .and_then(|n| n.parse().ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| {
            CloudError::malformed(
                Operation::GetItem,
                format!("the pause of group {group} has no until_epoch"),
            )
        })?;
    Ok(Pause {
        group: group.to_owned(),
        until,
        reason: text("reason").unwrap_or_default(),
        by: text("by").unwrap_or_default(),
    })
}

impl PauseBook for SdkLeases {
    fn pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<Option<Pause>, CloudError>> {
        Box::pin(async move {
            let out = self
                .dynamodb
                .get_item()
                .table_name(&self.table)
                .key("group", pause_key(group))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| cloud_error(Operation::GetItem, e))?;
            out.item().map(|item| pause_of(group, item)).transpose()
        })
    }

    fn set_pause<'a>(&'a self, pause: &'a Pause) -> BoxFuture<'a, Result<(), CloudError>> {
        Box::pin(async move {
            let s = |v: &str| AttributeValue::S(v.to_owned());
            let n = |v: i64| AttributeValue::N(v.to_string());
            let answer = self
                .dynamodb
                .put_item()
                .table_name(&self.table)
                .item("group", pause_key(&pause.group))
                .item("until_epoch", n(pause.until.timestamp()))
                .item(
                    "until",
                    s(&pause.until.to_rfc3339_opts(SecondsFormat::Secs, true)),
                )
                .item("reason", s(&pause.reason))
                .item("by", s(&pause.by))
                // TTL tidies the row a day after the pause ended.
                .item("expires_at", n(pause.until.timestamp() + 86_400))
                .send()
                .await;
            done(Operation::PutItem, answer)
        })
    }

    fn clear_pause<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<bool, CloudError>> {
        Box::pin(async move {
            let out = self
                .dynamodb
                .delete_item()
                .table_name(&self.table)
                .key("group", pause_key(group))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
                .await
                .map_err(|e| cloud_error(Operation::DeleteItem, e))?;
            Ok(out.attributes().is_some_and(|a| !a.is_empty()))
        })
    }
}
