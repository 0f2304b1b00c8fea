//! Sharded index partitions. Every item of a hot table (messages, notification inbox) is
//! copied into the table's listing indexes; with one partition key value per listing
//! (`all`, a status, a message type) every write of such an item would land on one index
//! partition, about 1,000 writes/s on DynamoDB. So those key attributes hold
//! `<value>#<shard>`, the shard a stable hash of the item's id (FNV-1a, modulo
//! [`SHARDS`]), and a listing queries every shard of its value, concurrently, and merges
//! the results in the index's order (by id).
//!
//! Sharding changes the attribute's values, not the index: no index is created or
//! deleted, so a deployment needs no staged rollout. Items written before sharding carry
//! the bare value (`all`, `queued`, ...); the reader queries that legacy partition too,
//! and any later write of such an item moves it to its shard (writes are full puts), so
//! old data stays listed without a migration step.
//!
//! The cursor stays opaque: base64 JSON of the listing's name and each partition's
//! position (not started, after an id, or done).
//!
//! A listing is a [`ShardedListing`] asking each partition one [`IndexQuery`]: the key
//! condition on the partition (narrowed on the id where asked) and the filter's
//! conditions, with the names and values they use.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rez_core::ports::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::codec::{Item, get_s, s};

/// How many shards a sharded key is split into. Changing it moves items between shards
/// only when they are next written; readers must then query the old shards too.
pub const SHARDS: u32 = 8;
/// The `list_pk` of items written before sharding, and the base of its shards.
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

/// The sharded key value of the item with this id under `base`: `<base>#<shard>`.
pub fn sharded(base: &str, id: &str) -> String {
    format!("{base}#{}", shard_of(id))
}

/// The `list_pk` value of the item with this id.
pub fn list_pk(id: &str) -> String {
    sharded(LEGACY_PK, id)
}

/// Every value a sharded key of `base` takes: its shards, then the legacy `base` itself.
/// What a filter on a sharded attribute compares with (`#attr IN (...)`).
pub fn partitions(base: &str) -> Vec<String> {
    (0..SHARDS).map(|i| format!("{base}#{i}")).chain(std::iter::once(base.to_owned())).collect()
}

/// A filter condition "the sharded attribute `#name` holds one of `bases`": `#name IN
/// (:p0, :p1, ...)` over every partition of each base, and the values it names. DynamoDB
/// takes at most 100 operands in one `IN`.
pub(crate) fn in_any_partition(
    name: &str,
    placeholder: &str,
    bases: &[&str],
) -> (String, Vec<(String, AttributeValue)>) {
    let values: Vec<(String, AttributeValue)> = bases
        .iter()
        .flat_map(|b| partitions(b))
        .enumerate()
        .map(|(i, v)| (format!(":{placeholder}{i}"), AttributeValue::S(v)))
        .collect();
    let list: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
    (format!("{name} IN ({})", list.join(", ")), values)
}

/// The query a listing runs on each of its partitions: table and index, the key condition
/// (`#pk = :pk`, narrowed on the sort key where asked) and the filter's conditions, with
/// the names and values they use.
#[derive(Debug, Clone)]
pub(crate) struct IndexQuery {
    table: String,
    index: &'static str,
    pk_attr: String,
    key_condition: String,
    filters: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl IndexQuery {
    pub(crate) fn new(table: &str, index: &'static str, pk_attr: &str) -> Self {
        Self {
            table: table.to_owned(),
            index,
            pk_attr: pk_attr.to_owned(),
            key_condition: "#pk = :pk".to_owned(),
            filters: Vec::new(),
            names: HashMap::from([("#pk".to_owned(), pk_attr.to_owned())]),
            values: Item::new(),
        }
    }

    /// Narrow the key condition: `condition` is ANDed to it.
    pub(crate) fn key(&mut self, condition: &str, names: &[(&str, &str)], values: Vec<(String, AttributeValue)>) {
        self.key_condition.push_str(" AND ");
        self.key_condition.push_str(condition);
        self.names.extend(names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.values.extend(values);
    }

    /// Add a filter condition; the conditions are ANDed.
    pub(crate) fn filter(&mut self, condition: &str, names: &[(&str, &str)], values: Vec<(String, AttributeValue)>) {
        self.filters.push(condition.to_owned());
        self.names.extend(names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self.values.extend(values);
    }

    /// Filter on `attr = value` (as `#attr = :attr`).
    pub(crate) fn filter_eq(&mut self, attr: &str, value: AttributeValue) {
        let (name, placeholder) = (format!("#{attr}"), format!(":{attr}"));
        self.filter(&format!("{name} = {placeholder}"), &[(&name, attr)], vec![(placeholder, value)]);
    }

    /// Whether the query has a filter expression (see [`crate::codec::query_until`]).
    pub(crate) fn filtered(&self) -> bool {
        !self.filters.is_empty()
    }

    /// The query of partition `pk`, without `ExclusiveStartKey`, `Limit` and direction.
    pub(crate) fn partition(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        pk: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut values = self.values.clone();
        values.insert(":pk".to_owned(), s(pk));
        dynamodb
            .query()
            .table_name(&self.table)
            .index_name(self.index)
            .key_condition_expression(&self.key_condition)
            .set_filter_expression(self.filtered().then(|| self.filters.join(" AND ")))
            .set_expression_attribute_names(Some(self.names.clone()))
            .set_expression_attribute_values(Some(values))
    }
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
/// `listing` over exactly the partitions of `base` with valid ids.
fn decode(raw: &str, listing: &str, base: &str, valid_id: fn(&str) -> bool) -> StoreResult<BTreeMap<String, Position>> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| StoreError::InvalidCursor)?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    let expected = partitions(base);
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

/// Which end of the index a listing starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    NewestFirst,
    OldestFirst,
}

/// One listing over a sharded index.
pub(crate) struct ShardedListing<'a> {
    /// Names the listing inside its cursors (e.g. `messages`).
    pub listing: &'a str,
    /// What is asked of each partition.
    pub query: IndexQuery,
    /// The value listed, before sharding (`all`, `queued`, ...).
    pub base: &'a str,
    /// The table's hash key, which is also the index's sort key.
    pub id_attr: &'a str,
    /// The table's sort key and its constant value on the listed items, for a table with
    /// a composite key (a continuation key must name every table key attribute).
    pub sort_key: Option<(&'a str, &'a str)>,
    /// Whether a cursor's id is one this listing could have written.
    pub valid_id: fn(&str) -> bool,
    /// Which end the listing starts from; each partition is queried in that direction.
    pub order: Order,
    /// Names the query in errors (e.g. `dynamodb query messages`).
    pub context: &'a str,
}

impl ShardedListing<'_> {
    /// Up to `limit` items across every partition in the listing's order, and the cursor
    /// of the rest. The partitions are queried concurrently.
    pub(crate) async fn page(
        &self,
        dynamodb: &aws_sdk_dynamodb::Client,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<(Vec<Item>, Option<String>)> {
        let mut positions = match cursor {
            None => partitions(self.base).into_iter().map(|pk| (pk, Position::Start)).collect(),
            Some(c) => decode(c, self.listing, self.base, self.valid_id)?,
        };
        let forward = self.order == Order::OldestFirst;
        // Each partition gives up to `limit + 1` items: its share of the page and whether
        // it has more.
        let queries = positions.iter().filter(|(_, pos)| **pos != Position::Done).map(|(pk, pos)| {
            let start = match pos {
                Position::Start | Position::Done => None,
                Position::After(id) => {
                    let mut key =
                        HashMap::from([(self.id_attr.to_owned(), s(id)), (self.query.pk_attr.clone(), s(pk))]);
                    if let Some((attr, value)) = self.sort_key {
                        key.insert(attr.to_owned(), s(value));
                    }
                    Some(key)
                }
            };
            async move {
                let query = || self.query.partition(dynamodb, pk).scan_index_forward(forward);
                let filtered = self.query.filtered();
                let items = crate::codec::query_until(query, filtered, limit + 1, start, self.context).await?;
                let keyed = items
                    .into_iter()
                    .map(|item| Ok((get_s(&item, self.id_attr)?.to_owned(), item)))
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok::<_, StoreError>((pk.clone(), keyed))
            }
        });
        let results = futures::future::try_join_all(queries).await?;
        let page = merge(&mut positions, results, limit, self.order);
        let next = if positions.values().all(|p| *p == Position::Done) {
            None
        } else {
            Some(encode(&Cursor { l: self.listing.to_owned(), p: positions })?)
        };
        Ok((page, next))
    }

    /// Every item of the listing, in its order, read page after page.
    pub(crate) async fn all(&self, dynamodb: &aws_sdk_dynamodb::Client) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let (items, next) = self.page(dynamodb, 100, cursor.as_deref()).await?;
            out.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

/// One page of a listing from what its partitions gave: each partition's items (id, item)
/// in the listing's order, up to `limit + 1` after its position. Takes up to `limit`
/// items in order, lists an id found in two partitions (an item moving from the legacy
/// partition to its shard) once, and moves each partition's position past what was
/// taken, or to `Done` when it gave everything it had and all of it was taken.
fn merge<T>(
    positions: &mut BTreeMap<String, Position>,
    results: Vec<(String, Vec<(String, T)>)>,
    limit: usize,
    order: Order,
) -> Vec<T> {
    let mut exhausted: HashMap<String, usize> = HashMap::new();
    let mut keyed: Vec<(String, String, T)> = Vec::new();
    for (pk, items) in results {
        if items.len() <= limit {
            exhausted.insert(pk.clone(), items.len());
        }
        keyed.extend(items.into_iter().map(|(id, item)| (id, pk.clone(), item)));
    }
    match order {
        Order::OldestFirst => keyed.sort_by(|a, b| a.0.cmp(&b.0)),
        Order::NewestFirst => keyed.sort_by(|a, b| b.0.cmp(&a.0)),
    }
    let mut page = Vec::new();
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut last_id: Option<String> = None;
    for (id, pk, item) in keyed {
        if page.len() == limit && last_id.as_deref() != Some(id.as_str()) {
            break;
        }
        *taken.entry(pk.clone()).or_default() += 1;
        positions.insert(pk, Position::After(id.clone()));
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
    page
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
        let mut p: BTreeMap<String, Position> = partitions("all").into_iter().map(|pk| (pk, Position::Done)).collect();
        p.insert("all#3".into(), Position::After("msg_x".into()));
        let c = encode(&Cursor { l: "messages".into(), p: p.clone() }).unwrap();
        assert_eq!(decode(&c, "messages", "all", any_id).unwrap(), p);
        assert!(matches!(decode(&c, "inbox", "all", any_id), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode(&c, "messages", "all", |id| id != "msg_x"), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode("not base64 !", "messages", "all", any_id), Err(StoreError::InvalidCursor)));
        let mut short = p.clone();
        short.remove("all");
        let c = encode(&Cursor { l: "messages".into(), p: short }).unwrap();
        assert!(matches!(decode(&c, "messages", "all", any_id), Err(StoreError::InvalidCursor)));
        // A cursor of an unsharded listing (a plain key) is refused too.
        let key = crate::codec::encode_cursor(&HashMap::from([("id".into(), s("msg_x"))])).unwrap();
        assert!(matches!(decode(&key, "messages", "all", any_id), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn a_cursor_belongs_to_one_value() {
        let p: BTreeMap<String, Position> = partitions("queued").into_iter().map(|pk| (pk, Position::Start)).collect();
        let c = encode(&Cursor { l: "by-status".into(), p }).unwrap();
        assert!(decode(&c, "by-status", "queued", any_id).is_ok());
        assert!(matches!(decode(&c, "by-status", "failed", any_id), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn an_in_condition_names_every_partition_of_each_value() {
        let (condition, values) = in_any_partition("#mt", "t", &["notify", "hello_world"]);
        assert_eq!(values.len(), 2 * (SHARDS as usize + 1));
        assert!(condition.starts_with("#mt IN (:t0, :t1, "), "{condition}");
        assert!(condition.ends_with(":t17)"), "{condition}");
        let wanted: Vec<&str> = values.iter().filter_map(|(_, v)| v.as_s().ok()).map(String::as_str).collect();
        assert!(wanted.contains(&"notify") && wanted.contains(&"notify#7") && wanted.contains(&"hello_world#0"));
        assert!(!wanted.contains(&"notify#8"));
    }

    #[test]
    fn every_queue_s_types_fit_one_in_condition() {
        // DynamoDB takes at most 100 operands in `IN`; the queue statistics name every
        // partition of every type of a queue.
        for q in rez_core::routing::QueueName::ALL {
            let types =
                rez_core::MessageType::ALL.into_iter().filter(|t| rez_core::routing::primary_queue(*t) == q).count();
            assert!(types * (SHARDS as usize + 1) <= 100, "{q}: {types} types");
        }
    }

    /// A listing over partitions held in memory, queried as DynamoDB would: up to
    /// `limit + 1` ids after the partition's position, in the listing's order.
    fn list_in_memory(parts: &BTreeMap<String, Vec<String>>, limit: usize, order: Order) -> Vec<Vec<String>> {
        let mut positions: BTreeMap<String, Position> = parts.keys().map(|pk| (pk.clone(), Position::Start)).collect();
        let mut pages = Vec::new();
        while !positions.values().all(|p| *p == Position::Done) {
            assert!(pages.len() <= 1_000, "the listing does not advance");
            let results = positions
                .iter()
                .filter(|(_, pos)| **pos != Position::Done)
                .map(|(pk, pos)| {
                    let mut ids = parts[pk].clone();
                    ids.sort();
                    if order == Order::NewestFirst {
                        ids.reverse();
                    }
                    let after = |id: &String| match pos {
                        Position::After(p) if order == Order::NewestFirst => id < p,
                        Position::After(p) => id > p,
                        Position::Start | Position::Done => true,
                    };
                    let got: Vec<(String, String)> =
                        ids.into_iter().filter(after).take(limit + 1).map(|id| (id.clone(), id)).collect();
                    (pk.clone(), got)
                })
                .collect();
            pages.push(merge(&mut positions, results, limit, order));
        }
        pages
    }

    proptest::proptest! {
        #[test]
        fn a_listing_yields_every_id_once_in_order(
            placed in proptest::collection::btree_map(0u16..500, (0usize..=SHARDS as usize, proptest::bool::weighted(0.15)), 0..80),
            limit in 1usize..12,
            newest_first in proptest::bool::ANY,
        ) {
            let order = if newest_first { Order::NewestFirst } else { Order::OldestFirst };
            let names = partitions("all");
            let mut parts: BTreeMap<String, Vec<String>> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
            for (id, (part, also_legacy)) in &placed {
                let id = format!("msg_{id:05}");
                parts.get_mut(&names[*part]).expect("a partition").push(id.clone());
                // An item caught moving from the legacy partition to its shard: in both.
                if *also_legacy && *part != SHARDS as usize {
                    parts.get_mut(LEGACY_PK).expect("the legacy partition").push(id);
                }
            }
            let pages = list_in_memory(&parts, limit, order);
            let mut want: Vec<String> = placed.keys().map(|id| format!("msg_{id:05}")).collect();
            if order == Order::NewestFirst {
                want.reverse();
            }
            proptest::prop_assert!(pages.iter().all(|p| p.len() <= limit));
            // Every page but the last is full: a short page means the listing is done.
            proptest::prop_assert!(pages.iter().rev().skip(1).all(|p| p.len() == limit), "{:?}", pages);
            let got: Vec<String> = pages.into_iter().flatten().collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
