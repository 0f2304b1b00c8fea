//! `ApprovalStore` on DynamoDB (the approvals table), the AWS counterpart of the SQLite
//! approval store: the first decision wins in one conditional write.
//!
//! Item layout (key `pk`):
//! - the approval: `pk` = approval id; `doc` (the approval as created, JSON), and beside it
//!   the attributes that change: `state`, `decided_ms`, `decided_by`, `asked_ms`, and the
//!   token hashes `approve_hash` / `decline_hash` (never in `doc`, so nothing that reads the
//!   document can show them); `expires_ms`, `run_id`, and `list_pk` (`all#<shard>`, the
//!   `by-all` index: listings newest first, sharded as in [`crate::shards`]);
//! - the run's step: `pk` = `run#<run id>#<step>`, `approval_id`. It is put in the same
//!   transaction as the approval, both on the condition that they are absent, so a run's
//!   step has one approval however often the step is retried.
//!
//! - `decide` is one UpdateItem on `state = pending AND expires_ms > now` (and, for a
//!   button, the decision's token hash); when that condition fails the approval is read
//!   back to answer as SQLite does: `BadToken` first, then a pending approval past its
//!   expiry is marked expired and answered `Already`, as is a decided one;
//! - `record_ask` is one UpdateItem on `state = pending`;
//! - `expire` is one UpdateItem on `state = pending AND expires_ms <= now`.
//!
//! Filters of `list_approvals` (state, run) are filter expressions on the `by-all` Query:
//! approvals are few (one per side-effecting call of a run that asks first).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use chrono::{TimeZone, Utc};
use rez_core::agent::approval::{Approval, ApprovalFilter, ApprovalState, ApprovalStore, Decided, Decision, Proof};
use rez_core::id::{ApprovalId, RunId};
use rez_core::ports::{Page, StoreError, StoreResult};
use rez_core::time::Timestamp;

use crate::AwsStore;
use crate::codec::{DOC, Item, doc, from_doc, get_s, n, opt_n, opt_s, s};
use crate::error::backend;
use crate::shards::{IndexQuery, LEGACY_PK, LIST_PK_ATTR, Order, ShardedListing, list_pk};
use crate::transact::{Transacted, build_error, transact};

/// The `by-all` index of the approvals table.
const BY_ALL: &str = "by-all";
const STATE: &str = "state";
const EXPIRES_MS: &str = "expires_ms";
const DECIDED_MS: &str = "decided_ms";
const DECIDED_BY: &str = "decided_by";
const ASKED_MS: &str = "asked_ms";
const APPROVE_HASH: &str = "approve_hash";
const DECLINE_HASH: &str = "decline_hash";
const RUN_ID: &str = "run_id";
const STEP_APPROVAL: &str = "approval_id";
/// How often `decide` writes again when the approval changed between its write and its
/// read-back (a repeated ask replacing the tokens).
const MAX_RACES: usize = 8;

fn step_pk(run: &RunId, step: u32) -> String {
    format!("run#{run}#{step}")
}

fn key(pk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), s(pk))])
}

fn hash_attr(decision: Decision) -> &'static str {
    match decision {
        Decision::Approve => APPROVE_HASH,
        Decision::Decline => DECLINE_HASH,
    }
}

fn ms(t: Timestamp) -> AttributeValue {
    n(t.timestamp_millis())
}

fn timestamp(item: &Item, name: &str) -> StoreResult<Option<Timestamp>> {
    opt_n(item, name)?
        .map(|v| {
            Utc.timestamp_millis_opt(v)
                .single()
                .ok_or_else(|| StoreError::Corrupt(format!("attribute `{name}` is not a timestamp: {v}")))
        })
        .transpose()
}

fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()).is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// The approval an item stands for: its document with the changing attributes over it.
fn decode(item: &Item) -> StoreResult<Approval> {
    let id = get_s(item, "pk")?;
    let mut a: Approval = from_doc(item)?;
    if a.id.as_str() != id {
        return Err(StoreError::Corrupt(format!("approval {id}: the document is of approval {}", a.id)));
    }
    let state = get_s(item, STATE)?;
    a.state = ApprovalState::parse(state)
        .ok_or_else(|| StoreError::Corrupt(format!("approval {id}: unknown state `{state}`")))?;
    a.decided_at = timestamp(item, DECIDED_MS)?;
    a.decided_by = opt_s(item, DECIDED_BY).map(str::to_owned);
    a.asked_at = timestamp(item, ASKED_MS)?;
    a.approve_token_hash = opt_s(item, APPROVE_HASH).unwrap_or_default().to_owned();
    a.decline_token_hash = opt_s(item, DECLINE_HASH).unwrap_or_default().to_owned();
    Ok(a)
}

/// The item of a new approval.
fn new_item(a: &Approval) -> StoreResult<Item> {
    let mut created = a.clone();
    // The document holds what never changes; the rest is in its own attributes.
    created.state = ApprovalState::Pending;
    created.decided_at = None;
    created.decided_by = None;
    created.asked_at = None;
    let mut item = Item::new();
    item.insert("pk".into(), s(a.id.as_str()));
    item.insert(DOC.into(), doc(&created)?);
    item.insert(STATE.into(), s(a.state.as_str()));
    item.insert(EXPIRES_MS.into(), ms(a.expires_at));
    item.insert(RUN_ID.into(), s(a.run_id.as_str()));
    item.insert(LIST_PK_ATTR.into(), s(&list_pk(a.id.as_str())));
    if let Some(t) = a.decided_at {
        item.insert(DECIDED_MS.into(), ms(t));
    }
    if let Some(by) = &a.decided_by {
        item.insert(DECIDED_BY.into(), s(by));
    }
    if let Some(t) = a.asked_at {
        item.insert(ASKED_MS.into(), ms(t));
    }
    for (attr, hash) in [(APPROVE_HASH, &a.approve_token_hash), (DECLINE_HASH, &a.decline_token_hash)] {
        if !hash.is_empty() {
            item.insert(attr.into(), s(hash));
        }
    }
    Ok(item)
}

/// Hashes are hex of a SHA-256: compared without an early exit all the same.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AwsStore {
    fn approvals(&self) -> &str {
        &self.names.approvals_table
    }

    async fn approval_item(&self, pk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(self.approvals())
            .set_key(Some(key(pk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("dynamodb get_item approval", e))?;
        Ok(out.item)
    }

    async fn load_approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        self.approval_item(id.as_str()).await?.as_ref().map(decode).transpose()
    }

    /// One UpdateItem of approval `id` on `condition` (which also requires the item): the
    /// approval as updated, or `None` when the condition failed.
    async fn update_approval(
        &self,
        id: &ApprovalId,
        update: &str,
        condition: &str,
        names: HashMap<String, String>,
        values: HashMap<String, AttributeValue>,
        context: &str,
    ) -> StoreResult<Option<Approval>> {
        let out = self
            .clients
            .dynamodb
            .update_item()
            .table_name(self.approvals())
            .set_key(Some(key(id.as_str())))
            .update_expression(update)
            .condition_expression(format!("attribute_exists(pk) AND {condition}"))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(out) => {
                let item = out.attributes.ok_or_else(|| StoreError::Corrupt(format!("{context}: no item returned")))?;
                Ok(Some(decode(&item)?))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(backend(context, e)),
        }
    }

    /// Mark `a` expired if it is still pending and due at `now`; the approval as it stands.
    async fn expire_due(&self, a: Approval, now: Timestamp) -> StoreResult<Approval> {
        if a.state != ApprovalState::Pending || now < a.expires_at {
            return Ok(a);
        }
        let names = HashMap::from([
            ("#state".to_owned(), STATE.to_owned()),
            ("#exp".to_owned(), EXPIRES_MS.to_owned()),
            ("#decided".to_owned(), DECIDED_MS.to_owned()),
        ]);
        let values = HashMap::from([
            (":pending".to_owned(), s(ApprovalState::Pending.as_str())),
            (":expired".to_owned(), s(ApprovalState::Expired.as_str())),
            (":now".to_owned(), ms(now)),
            (":at".to_owned(), ms(a.expires_at)),
        ]);
        let update = "SET #state = :expired, #decided = :at";
        let condition = "#state = :pending AND #exp <= :now";
        match self.update_approval(&a.id, update, condition, names, values, "dynamodb expire approval").await? {
            Some(x) => {
                tracing::info!(approval_id = %x.id, run_id = %x.run_id, "approval expired");
                Ok(x)
            }
            // Decided or expired meanwhile: as it stands now.
            None => self.load_approval(&a.id).await?.ok_or_else(|| StoreError::NotFound(format!("approval {}", a.id))),
        }
    }
}

#[async_trait]
impl ApprovalStore for AwsStore {
    async fn create_approval(&self, approval: &Approval) -> StoreResult<(Approval, bool)> {
        let step = step_pk(&approval.run_id, approval.step);
        let absent = "attribute_not_exists(pk)";
        let put_approval = Put::builder()
            .table_name(self.approvals())
            .set_item(Some(new_item(approval)?))
            .condition_expression(absent)
            .build()
            .map_err(|e| build_error("the approval put", e))?;
        let step_item = HashMap::from([
            ("pk".to_owned(), s(&step)),
            (STEP_APPROVAL.to_owned(), s(approval.id.as_str())),
            (RUN_ID.to_owned(), s(approval.run_id.as_str())),
        ]);
        let put_step = Put::builder()
            .table_name(self.approvals())
            .set_item(Some(step_item))
            .condition_expression(absent)
            .build()
            .map_err(|e| build_error("the approval's step put", e))?;
        let items = vec![
            TransactWriteItem::builder().put(put_approval).build(),
            TransactWriteItem::builder().put(put_step).build(),
        ];
        let outcome = transact(&self.clients.dynamodb, items, "dynamodb create approval").await?;
        if outcome == Transacted::Committed {
            tracing::debug!(approval_id = %approval.id, run_id = %approval.run_id, step = approval.step, "approval created");
            return Ok((approval.clone(), true));
        }
        if outcome.failed(1) {
            let stored = self.approval_for_step(&approval.run_id, approval.step).await?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "run {} step {}: no approval behind its step item",
                    approval.run_id, approval.step
                ))
            })?;
            return Ok((stored, false));
        }
        if outcome.failed(0) {
            return Err(StoreError::Conflict(format!("approval {} exists already", approval.id)));
        }
        Err(StoreError::Unavailable(format!("dynamodb create approval cancelled: {outcome:?}")))
    }

    async fn get_approval(&self, id: &ApprovalId) -> StoreResult<Option<Approval>> {
        self.load_approval(id).await
    }

    async fn approval_for_step(&self, run: &RunId, step: u32) -> StoreResult<Option<Approval>> {
        let Some(item) = self.approval_item(&step_pk(run, step)).await? else { return Ok(None) };
        let raw = get_s(&item, STEP_APPROVAL)?;
        let id = ApprovalId::parse(raw)
            .map_err(|_| StoreError::Corrupt(format!("run {run} step {step}: bad approval id `{raw}`")))?;
        self.load_approval(&id).await
    }

    async fn list_approvals(&self, filter: &ApprovalFilter) -> StoreResult<Page<Approval>> {
        let limit = filter.limit.clamp(1, 100);
        let mut query = IndexQuery::new(self.approvals(), BY_ALL, LIST_PK_ATTR);
        if let Some(state) = filter.state {
            query.filter_eq(STATE, s(state.as_str()));
        }
        if let Some(run) = &filter.run_id {
            query.filter_eq(RUN_ID, s(run.as_str()));
        }
        let listing = ShardedListing {
            listing: "approvals",
            query,
            base: LEGACY_PK,
            id_attr: "pk",
            sort_key: None,
            valid_id: |id| ApprovalId::parse(id).is_ok(),
            order: Order::NewestFirst,
            context: "dynamodb query approvals",
        };
        let (items, next_cursor) = listing.page(&self.clients.dynamodb, limit, filter.cursor.as_deref()).await?;
        let items = items.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn record_ask(
        &self,
        id: &ApprovalId,
        approve_hash: &str,
        decline_hash: &str,
        at: Timestamp,
    ) -> StoreResult<Approval> {
        if approve_hash.is_empty() || decline_hash.is_empty() {
            return Err(StoreError::Conflict(format!("approval {id}: an ask needs both token hashes")));
        }
        let names = HashMap::from([
            ("#state".to_owned(), STATE.to_owned()),
            ("#ah".to_owned(), APPROVE_HASH.to_owned()),
            ("#dh".to_owned(), DECLINE_HASH.to_owned()),
            ("#asked".to_owned(), ASKED_MS.to_owned()),
        ]);
        let values = HashMap::from([
            (":pending".to_owned(), s(ApprovalState::Pending.as_str())),
            (":ah".to_owned(), s(approve_hash)),
            (":dh".to_owned(), s(decline_hash)),
            (":at".to_owned(), ms(at)),
        ]);
        let update = "SET #ah = :ah, #dh = :dh, #asked = :at";
        match self
            .update_approval(id, update, "#state = :pending", names, values, "dynamodb record approval ask")
            .await?
        {
            Some(a) => Ok(a),
            None => match self.load_approval(id).await? {
                None => Err(StoreError::NotFound(format!("approval {id}"))),
                Some(a) => Err(StoreError::Conflict(format!("approval {id} is {}", a.state))),
            },
        }
    }

    async fn decide(&self, id: &ApprovalId, decision: Decision, proof: &Proof, now: Timestamp) -> StoreResult<Decided> {
        let (by, hash) = match proof {
            Proof::TokenHash(h) => ("link".to_owned(), Some(h.as_str())),
            Proof::Principal(who) => (who.clone(), None),
        };
        let decided = match decision {
            Decision::Approve => ApprovalState::Approved,
            Decision::Decline => ApprovalState::Declined,
        };
        for _ in 0..MAX_RACES {
            // An empty hash matches no token: only the read-back can answer it.
            if hash != Some("") {
                let mut names = HashMap::from([
                    ("#state".to_owned(), STATE.to_owned()),
                    ("#exp".to_owned(), EXPIRES_MS.to_owned()),
                    ("#decided".to_owned(), DECIDED_MS.to_owned()),
                    ("#by".to_owned(), DECIDED_BY.to_owned()),
                ]);
                let mut values = HashMap::from([
                    (":pending".to_owned(), s(ApprovalState::Pending.as_str())),
                    (":decided".to_owned(), s(decided.as_str())),
                    (":now".to_owned(), ms(now)),
                    (":by".to_owned(), s(&by)),
                ]);
                let mut condition = "#state = :pending AND #exp > :now".to_owned();
                if let Some(h) = hash {
                    names.insert("#hash".into(), hash_attr(decision).into());
                    values.insert(":hash".into(), s(h));
                    condition.push_str(" AND #hash = :hash");
                }
                let update = "SET #state = :decided, #decided = :now, #by = :by";
                if let Some(a) =
                    self.update_approval(id, update, &condition, names, values, "dynamodb decide approval").await?
                {
                    tracing::info!(approval_id = %a.id, run_id = %a.run_id, decision = %decision, "approval decided");
                    return Ok(Decided::Now(a));
                }
            }
            let Some(a) = self.load_approval(id).await? else { return Ok(Decided::NotFound) };
            if let Some(h) = hash
                && !same_hash(h, a.token_hash(decision))
            {
                return Ok(Decided::BadToken);
            }
            if a.state == ApprovalState::Pending && now >= a.expires_at {
                return Ok(Decided::Already(self.expire_due(a, now).await?));
            }
            if a.state != ApprovalState::Pending {
                return Ok(Decided::Already(a));
            }
            // Pending, open and the proof holds: it changed between the write and the read.
        }
        Err(StoreError::Unavailable(format!("approval {id} kept changing while being decided")))
    }

    async fn expire(&self, id: &ApprovalId, now: Timestamp) -> StoreResult<Option<Approval>> {
        let Some(a) = self.load_approval(id).await? else { return Ok(None) };
        self.expire_due(a, now).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_whole_and_never_empty() {
        assert!(same_hash("ab", "ab"));
        assert!(!same_hash("ab", "ac"));
        assert!(!same_hash("ab", "abc"));
        assert!(!same_hash("", ""), "an approval not asked yet has no token");
    }

    #[test]
    fn a_step_item_never_looks_like_an_approval() {
        let run = RunId::parse("run_01JZ0000000000000000000000").unwrap();
        let pk = step_pk(&run, 12);
        assert_eq!(pk, "run#run_01JZ0000000000000000000000#12");
        assert!(ApprovalId::parse(&pk).is_err());
    }
}
