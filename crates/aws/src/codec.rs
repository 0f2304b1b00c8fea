//! DynamoDB attribute helpers shared by every table adapter: entities are stored as
//! JSON in a `doc` attribute (so their serde contract is the storage format), beside the
//! key and index attributes; listing cursors are the query's `LastEvaluatedKey`, made
//! opaque. Kept small and general on purpose: each table's own layout lives in its file.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rez_core::ports::{StoreError, StoreResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The attribute holding the entity's JSON.
pub(crate) const DOC: &str = "doc";

/// An item, as the SDK passes it around.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

/// A number attribute.
pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// `value` as JSON in a string attribute.
pub(crate) fn doc<T: Serialize>(value: &T) -> StoreResult<AttributeValue> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {e}")))
}

/// The entity stored in the item's `doc` attribute.
pub(crate) fn from_doc<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    let raw = get_s(item, DOC)?;
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad `{DOC}` attribute: {e}")))
}

/// A required string attribute.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> StoreResult<&'a str> {
    opt_s(item, name).ok_or_else(|| StoreError::Corrupt(format!("item has no string attribute `{name}`")))
}

/// An optional string attribute.
pub(crate) fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// An optional number attribute.
pub(crate) fn opt_n(item: &Item, name: &str) -> StoreResult<Option<i64>> {
    match item.get(name).and_then(|v| v.as_n().ok()) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is not an integer: {raw}"))),
    }
}

/// One key attribute in a cursor: `{"S": ...}` or `{"N": ...}`.
#[derive(serde::Serialize, serde::Deserialize)]
enum KeyAttr {
    S(String),
    N(String),
}

/// A `LastEvaluatedKey` as an opaque, URL-safe cursor. Keys hold only S and N attributes
/// (every key schema of the template); anything else is a bug and reported as such.
pub(crate) fn encode_cursor(key: &Item) -> StoreResult<String> {
    let mut out = BTreeMap::new();
    for (name, v) in key {
        let a = match v {
            AttributeValue::S(x) => KeyAttr::S(x.clone()),
            AttributeValue::N(x) => KeyAttr::N(x.clone()),
            _ => return Err(StoreError::Corrupt(format!("key attribute `{name}` is neither S nor N"))),
        };
        out.insert(name.clone(), a);
    }
    let json = serde_json::to_vec(&out).map_err(|e| StoreError::Corrupt(format!("cannot encode cursor: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `ExclusiveStartKey` a cursor from [`encode_cursor`] stands for.
pub(crate) fn decode_cursor(cursor: &str) -> StoreResult<Item> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let map: BTreeMap<String, KeyAttr> = serde_json::from_slice(&raw).map_err(|_| StoreError::InvalidCursor)?;
    if map.is_empty() {
        return Err(StoreError::InvalidCursor);
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                KeyAttr::S(x) => AttributeValue::S(x),
                KeyAttr::N(x) => AttributeValue::N(x),
            };
            (k, v)
        })
        .collect())
}

/// Run a query page after page until `want` items came back or the index is exhausted.
/// A page of a filtered query can be short or even empty and still have a
/// `LastEvaluatedKey`, so one page is never enough. `build` returns the query without
/// `ExclusiveStartKey` and `Limit`; `filtered` says whether it has a filter expression
/// (then pages are read 100 items at a time rather than exactly what is missing).
pub(crate) async fn query_until(
    build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    filtered: bool,
    want: usize,
    start: Option<Item>,
    context: &str,
) -> StoreResult<Vec<Item>> {
    let mut items: Vec<Item> = Vec::new();
    let mut start = start;
    while items.len() < want {
        let missing = want - items.len();
        let page_size = if filtered { 100 } else { missing.min(1000) };
        let out = build()
            .set_exclusive_start_key(start.take())
            .limit(i32::try_from(page_size).unwrap_or(100))
            .send()
            .await
            .map_err(|e| crate::error::backend(context, e))?;
        items.extend(out.items.unwrap_or_default().into_iter().take(missing));
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => break,
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let mut key = Item::new();
        key.insert("id".into(), s("msg_1"));
        key.insert("n".into(), n(42));
        let c = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&c).unwrap(), key);
        for bad in ["", "!!", "e30", "bm90IGpzb24"] {
            assert!(matches!(decode_cursor(bad), Err(StoreError::InvalidCursor)), "{bad}");
        }
    }

    #[test]
    fn doc_round_trips() {
        let mut item = Item::new();
        item.insert(DOC.into(), doc(&serde_json::json!({"a": 1})).unwrap());
        let v: serde_json::Value = from_doc(&item).unwrap();
        assert_eq!(v["a"], 1);
        assert!(from_doc::<serde_json::Value>(&Item::new()).is_err());
    }
}
