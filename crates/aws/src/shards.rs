//! Sharded `by-all` listing partitions. Every item of a hot table (messages, notification
//! inbox) is copied into its table's `by-all` index; with one constant partition key every
//! write would land on one index partition (about 1,000 writes/s on DynamoDB). So the
//! partition key `list_pk` is `all#<shard>`, the shard a stable hash of the item's id
//! (FNV-1a, modulo [`SHARDS`]), and a listing queries every shard and merges the results
//! in the index's order (id descending).
//!
//! Items written before sharding carry `list_pk = "all"` ([`LEGACY_PK`]); the reader
//! queries that partition too, and any later write of such an item moves it to its shard
//! (writes are full puts), so old data is listed without a migration step.
//!
//! The cursor stays opaque: base64 JSON of the listing's name and each partition's
//! position (not started, after an id, or done).

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rez_core::ports::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::codec::{Item, get_s, s};

/// How many shards a `by-all` index is split into. Changing it moves items between shards
/// only when they are next written; readers must then query the old shards too.
pub const SHARDS: u32 = 8;
/// The partition of items written before sharding.
pub const LEGACY_PK: &str = "all";
/// The partition key attribute of the `by-all` indexes.
pub(crate) const LIST_PK_ATTR: &str = "list_pk";

/// The shard of an id: FNV-1a (32 bit) of its bytes, modulo [`SHARDS`]. Stable across
/// builds and platforms, which stored items depend on.
pub fn shard_of(id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

/// The `list_pk` value of the item with this id.
pub fn list_pk(id: &str) -> String {
    format!("{LEGACY_PK}#{}", shard_of(id))
}

/// Every partition a listing reads: the shards, then the legacy partition.
fn partitions() -> Vec<String> {
    (0..SHARDS).map(|i| format!("{LEGACY_PK}#{i}")).chain(std::iter::once(LEGACY_PK.to_owned())).collect()
}

/// Where a listing stands in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Position {
    /// Nothing read from it yet.
    Start,
    /// Continue after this id.
    After(String),
    /// Everything in it was listed.
    Done,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// Which listing the cursor belongs to, so another listing's cursor is refused.
    l: String,
    p: BTreeMap<String, Position>,
}

fn encode(c: &Cursor) -> StoreResult<String> {
    let json = serde_json::to_vec(c).map_err(|e| StoreError::Corrupt(format!("cannot encode cursor: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The positions a cursor stands for; `InvalidCursor` unless it is a cursor of
/// `listing` over exactly the current partitions with valid ids.
fn decode(raw: &str, listing: &str, valid_id: fn(&str) -> bool) -> StoreResult<BTreeMap<String, Position>> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| StoreError::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    let expected = partitions();
    let valid = c.l == listing
        && c.p.len() == expected.len()
        && expected.iter().all(|pk| c.p.contains_key(pk))
        && c.p.values().all(|p| match p {
            Position::After(id) => valid_id(id),
            Position::Start | Position::Done => true,
        });
    if !valid {
        return Err(StoreError::InvalidCursor);
    }
    Ok(c.p)
}

/// One listing over a sharded `by-all` index.
pub(crate) struct ShardedListing<'a> {
    /// Names the listing inside its cursors (e.g. `messages`).
    pub listing: &'a str,
    /// The table's hash key, which is also the index's sort key.
    pub id_attr: &'a str,
    /// The table's sort key and its constant value on the listed items, for a table with
    /// a composite key (a continuation key must name every table key attribute).
    pub sort_key: Option<(&'a str, &'a str)>,
    /// Whether a cursor's id is one this listing could have written.
    pub valid_id: fn(&str) -> bool,
    /// Whether the query has a filter expression (see [`crate::codec::query_until`]).
    pub filtered: bool,
    pub context: &'a str,
}

impl ShardedListing<'_> {
    /// Up to `limit` items across every partition, id descending, and the cursor of the
    /// rest. `build(pk)` is the query of one partition (key condition on `:pk`, index,
    /// order descending) without `ExclusiveStartKey` and `Limit`.
    pub(crate) async fn page(
        &self,
        limit: usize,
        cursor: Option<&str>,
        build: impl Fn(&str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> StoreResult<(Vec<Item>, Option<String>)> {
        let mut positions = match cursor {
            None => partitions().into_iter().map(|pk| (pk, Position::Start)).collect(),
            Some(c) => decode(c, self.listing, self.valid_id)?,
        };
        // Each partition gives up to `limit + 1` items: its share of the page and whether
        // it has more.
        let mut fetched: Vec<(String, Item)> = Vec::new();
        let mut exhausted: HashMap<String, usize> = HashMap::new();
        for (pk, pos) in &positions {
            let start = match pos {
                Position::Done => continue,
                Position::Start => None,
                Position::After(id) => {
                    let mut key = HashMap::from([(self.id_attr.to_owned(), s(id)), (LIST_PK_ATTR.to_owned(), s(pk))]);
                    if let Some((attr, value)) = self.sort_key {
                        key.insert(attr.to_owned(), s(value));
                    }
                    Some(key)
                }
            };
            let items = crate::codec::query_until(|| build(pk), self.filtered, limit + 1, start, self.context).await?;
            if items.len() <= limit {
                exhausted.insert(pk.clone(), items.len());
            }
            fetched.extend(items.into_iter().map(|i| (pk.clone(), i)));
        }
        let mut keyed = fetched
            .into_iter()
            .map(|(pk, item)| Ok((get_s(&item, self.id_attr)?.to_owned(), pk, item)))
            .collect::<StoreResult<Vec<_>>>()?;
        keyed.sort_by(|a, b| b.0.cmp(&a.0));
        let mut page = Vec::new();
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut last_id: Option<String> = None;
        for (id, pk, item) in keyed {
            if page.len() == limit && last_id.as_deref() != Some(id.as_str()) {
                break;
            }
            *taken.entry(pk.clone()).or_default() += 1;
            positions.insert(pk, Position::After(id.clone()));
            // The same id in two partitions (an item moving from the legacy partition to
            // its shard while being listed) is listed once.
            if last_id.as_deref() != Some(id.as_str()) {
                page.push(item);
                last_id = Some(id);
            }
        }
        for (pk, count) in exhausted {
            if taken.get(&pk).copied().unwrap_or(0) == count {
                positions.insert(pk, Position::Done);
            }
        }
        let next = if positions.values().all(|p| *p == Position::Done) {
            None
        } else {
            Some(encode(&Cursor { l: self.listing.to_owned(), p: positions })?)
        };
        Ok((page, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_of_is_pinned() {
        // Stored items depend on these values: a different hash would strand them.
        assert_eq!(shard_of(""), 0x811c_9dc5 % SHARDS);
        assert_eq!(shard_of("a"), 0xe40c_292c % SHARDS);
        assert_eq!(shard_of("foobar"), 0xbf9c_f968 % SHARDS);
        assert_eq!(list_pk("a"), format!("all#{}", 0xe40c_292c_u32 % SHARDS));
    }

    #[test]
    fn ids_spread_over_every_shard() {
        let mut counts = [0u32; SHARDS as usize];
        for i in 0..8_000u64 {
            let id = format!("msg_{}", ulid::Ulid::from_parts(1_700_000_000_000 + i, u128::from(i) * 7_919));
            counts[shard_of(&id) as usize] += 1;
        }
        // 1,000 expected per shard.
        assert!(counts.iter().all(|c| (850..1150).contains(c)), "{counts:?}");
    }

    fn any_id(_: &str) -> bool {
        true
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let mut p: BTreeMap<String, Position> = partitions().into_iter().map(|pk| (pk, Position::Done)).collect();
        p.insert("all#3".into(), Position::After("msg_x".into()));
        let c = encode(&Cursor { l: "messages".into(), p: p.clone() }).unwrap();
        assert_eq!(decode(&c, "messages", any_id).unwrap(), p);
        assert!(matches!(decode(&c, "inbox", any_id), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode(&c, "messages", |id| id != "msg_x"), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode("not base64 !", "messages", any_id), Err(StoreError::InvalidCursor)));
        let mut short = p.clone();
        short.remove("all");
        let c = encode(&Cursor { l: "messages".into(), p: short }).unwrap();
        assert!(matches!(decode(&c, "messages", any_id), Err(StoreError::InvalidCursor)));
        // A cursor of an unsharded listing (a plain key) is refused too.
        let key = crate::codec::encode_cursor(&HashMap::from([("id".into(), s("msg_x"))])).unwrap();
        assert!(matches!(decode(&key, "messages", any_id), Err(StoreError::InvalidCursor)));
    }
}
