//! Linode's `X-Filter` header (equality on dotted fields, `+gte` and
//! friends, `+and`/`+or`, `+order_by`/`+order`) and its pagination.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::http::HeaderMap;
use serde_json::{Value, json};

/// Linode's page size bounds and default.
const MIN_PAGE: usize = 25;
const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 100;

/// The `X-Filter` header as JSON; `Err` when it is present but not a JSON
/// object.
pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Option<Value>, String> {
    let Some(raw) = headers.get("x-filter") else {
        return Ok(None);
    };
    let text = raw
        .to_str()
        .map_err(|_| "X-Filter is not text".to_owned())?;
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        _ => Err("Invalid JSON in X-Filter".to_owned()),
    }
}

/// Whether `item` passes `filter`.
pub(crate) fn matches(filter: &Value, item: &Value) -> bool {
    let Some(map) = filter.as_object() else {
        return true;
    };
    map.iter().all(|(key, cond)| match key.as_str() {
        "+and" => cond
            .as_array()
            .is_some_and(|all| all.iter().all(|f| matches(f, item))),
        "+or" => cond
            .as_array()
            .is_some_and(|any| any.iter().any(|f| matches(f, item))),
        k if k.starts_with('+') => true,
        field => condition(lookup(item, field), cond),
    })
}

fn lookup<'a>(item: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(item, |v, key| v.get(key))
}

fn condition(field: Option<&Value>, cond: &Value) -> bool {
    // A list field (`tags`) matches when one of its items equals the value.
    if let (Some(Value::Array(items)), false) = (field, cond.is_object()) {
        return items
            .iter()
            .any(|item| compare(item, cond) == Some(Ordering::Equal));
    }
    if let Some(ops) = cond.as_object() {
        return ops.iter().all(|(op, want)| {
            let order = field.and_then(|f| compare(f, want));
            match op.as_str() {
                "+gte" => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
                "+gt" => order == Some(Ordering::Greater),
                "+lte" => matches!(order, Some(Ordering::Less | Ordering::Equal)),
                "+lt" => order == Some(Ordering::Less),
                "+neq" => order != Some(Ordering::Equal),
                "+contains" => match (field.and_then(Value::as_str), want.as_str()) {
                    (Some(have), Some(want)) => have.contains(want),
                    _ => false,
                },
                _ => false,
            }
        });
    }
    field.and_then(|f| compare(f, cond)) == Some(Ordering::Equal)
}

/// Numbers compare as numbers, strings as strings (Linode's timestamps sort
/// as text), booleans as booleans; an id may be given as text or number.
fn compare(have: &Value, want: &Value) -> Option<Ordering> {
    match (have, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            (a.to_string() == *b).then_some(Ordering::Equal)
        }
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// Sorts by `+order_by` (ties by `id`), ascending unless `+order` is `desc`.
fn sort(items: &mut [Value], filter: &Value) {
    let Some(by) = filter.get("+order_by").and_then(Value::as_str) else {
        return;
    };
    let desc = filter.get("+order").and_then(Value::as_str) == Some("desc");
    items.sort_by(|a, b| {
        let key = |v: &Value, k: &str| lookup(v, k).cloned().unwrap_or(Value::Null);
        let order = compare(&key(a, by), &key(b, by))
            .unwrap_or(Ordering::Equal)
            .then_with(|| compare(&key(a, "id"), &key(b, "id")).unwrap_or(Ordering::Equal));
        if desc { order.reverse() } else { order }
    });
}

/// `page` (from 1) and `page_size` (clamped to 25..=500, default 100).
fn paging(query: &HashMap<String, String>) -> (usize, usize) {
    let page = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let size = query
        .get("page_size")
        .and_then(|p| p.parse::<usize>().ok())
        .map_or(DEFAULT_PAGE, |s| s.clamp(MIN_PAGE, MAX_PAGE));
    (page, size)
}

/// A Linode list answer: filtered, sorted, one page of it.
pub(crate) fn list(
    items: Vec<Value>,
    filter: Option<&Value>,
    query: &HashMap<String, String>,
) -> Value {
    let mut items: Vec<Value> = match filter {
        Some(f) => items.into_iter().filter(|i| matches(f, i)).collect(),
        None => items,
    };
    if let Some(f) = filter {
        sort(&mut items, f);
    }
    let (page, size) = paging(query);
    let (data, pages) = kastell_sim::page_of(&items, page, size);
    json!({"data": data, "page": page, "pages": pages, "results": items.len()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_search_filters_and_orders_like_linodego() {
        let events = vec![
            json!({"id": 1, "action": "linode_reboot", "created": "2026-08-01T09:59:59", "entity": {"id": 7, "type": "linode"}}),
            json!({"id": 2, "action": "linode_reboot", "created": "2026-08-01T10:00:00", "entity": {"id": 7, "type": "linode"}}),
            json!({"id": 3, "action": "linode_reboot", "created": "2026-08-01T10:00:00", "entity": {"id": 7, "type": "linode"}}),
            json!({"id": 4, "action": "linode_boot", "created": "2026-08-01T10:00:01", "entity": {"id": 7, "type": "linode"}}),
            json!({"id": 5, "action": "linode_reboot", "created": "2026-08-01T10:00:01", "entity": {"id": 8, "type": "linode"}}),
        ];
        let filter = json!({"+order": "desc", "+order_by": "created", "action": "linode_reboot",
            "entity.id": 7, "entity.type": "linode", "created": {"+gte": "2026-08-01T10:00:00"}});
        let answer = list(events, Some(&filter), &HashMap::new());
        let ids: Vec<u64> = answer["data"]
            .as_array()
            .map(|d| d.iter().filter_map(|e| e["id"].as_u64()).collect())
            .unwrap_or_default();
        assert_eq!(ids, vec![3, 2]);
        assert_eq!(answer["results"], 2);
    }

    #[test]
    fn operators_and_pages() {
        let item = json!({"is_public": false, "label": "kastell-1-x", "size": 10});
        assert!(matches(&json!({"is_public": false}), &item));
        assert!(!matches(&json!({"is_public": true}), &item));
        assert!(matches(&json!({"label": {"+contains": "kastell"}}), &item));
        assert!(matches(
            &json!({"+or": [{"size": 3}, {"size": {"+lt": 11}}]}),
            &item
        ));
        assert!(!matches(
            &json!({"+and": [{"size": 10}, {"size": {"+neq": 10}}]}),
            &item
        ));
        let q: HashMap<String, String> = [
            ("page".into(), "2".into()),
            ("page_size".into(), "5".into()),
        ]
        .into();
        let items: Vec<Value> = (0..60).map(|i| json!({"id": i})).collect();
        let answer = list(items, None, &q);
        assert_eq!(answer["pages"], 3, "page_size is raised to 25");
        assert_eq!(answer["data"][0]["id"], 25);
    }
}
