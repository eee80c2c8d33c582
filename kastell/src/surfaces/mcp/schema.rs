//! The tools' JSON Schemas, as every MCP client accepts them.
//!
//! The MCP specification (2025-06-18 and later) requires `type: "object"` at
//! the root of every tool's `inputSchema` and `outputSchema`, and the
//! official SDKs enforce it: the TypeScript SDK rejects a whole `tools/list`
//! whose output schema is a bare `oneOf`, and warns about every format it
//! does not know. schemars writes Rust integers with its own formats
//! (`uint32`, `int64`, ...). This module gives [`super::tools`] the pieces
//! it assembles tool schemas from, and makes them:
//!
//! - rooted at `type: "object"` (a tool's output is a `oneOf` of its
//!   actions' results, tagged by `action`, with the tag's values listed as
//!   a top-level property; [`union`]);
//! - free of non-standard `format`s (ranges stay as `minimum`/`maximum`);
//! - free of `$schema` (the spec's default dialect, 2020-12, applies);
//! - lean where an agent reads them in every session ([`lean`]: output
//!   schemas typed field by field, without prose or definitions).

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The `format` values JSON Schema 2020-12 defines; any other is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// A generator for argument schemas (what `Deserialize` accepts).
pub(crate) fn input_generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// A generator for result schemas (what `Serialize` writes).
pub(crate) fn output_generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
}

/// `schema` as JSON, cleaned of non-standard formats.
pub(crate) fn value_of(schema: schemars::Schema) -> Value {
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Bool(true));
    strip_formats(&mut value);
    value
}

/// The properties of an object schema, cleaned.
pub(crate) fn properties_of(schema: schemars::Schema) -> Map<String, Value> {
    match value_of(schema) {
        Value::Object(mut object) => match object.remove("properties") {
            Some(Value::Object(properties)) => properties,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

/// The properties of `T`'s argument schema.
pub(crate) fn input_properties<T: JsonSchema>() -> Map<String, Value> {
    properties_of(input_generator().into_root_schema_for::<T>())
}

/// A tool's output schema: the union of `branches` (each a `$ref` into
/// `generator`'s definitions, tagged ones first) rooted at `type: object`,
/// with the tag values `tags` listed as the `action` property. The tag is
/// not required at the root: the failure branch has none.
pub(crate) fn union(
    mut generator: schemars::SchemaGenerator,
    branches: Vec<Value>,
    tags: Vec<Value>,
) -> JsonObject {
    let mut defs = Value::Object(generator.take_definitions(true));
    strip_formats(&mut defs);
    let mut schema = Map::new();
    schema.insert("$defs".into(), defs);
    schema.insert("oneOf".into(), Value::Array(branches));
    schema.insert(
        "properties".into(),
        json!({"action": {"enum": tags, "type": "string"}}),
    );
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

/// The lean form of a tool's output schema `full` (as [`union`] makes
/// it), what `tools/list` serves: an agent reads it in every session, so
/// it says what each action returns in a fraction of the bytes, and every
/// result that satisfies `full` satisfies it.
///
/// - the fields of every result are declared once, at the root, by type
///   (a field two results type differently takes either type); nested
///   objects are typed `object` without their own fields, enumerations
///   keep their values;
/// - each `oneOf` branch is an action's tag and the fields its result
///   always has (`required`), the failure's branch its own; what every
///   branch requires is required at the root instead;
/// - no descriptions (the tool and argument descriptions say what an
///   action is for) and no `$defs`.
pub(crate) fn lean(full: &JsonObject) -> JsonObject {
    let empty = Map::new();
    let defs = full
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut properties = Map::new();
    let mut branches: Vec<(Option<Value>, Vec<Value>)> = Vec::new();
    for branch in full
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let result = resolve(branch, defs);
        if let Some(fields) = result.get("properties").and_then(Value::as_object) {
            for (name, field) in fields {
                merge(&mut properties, name, shallow(field, defs));
            }
        }
        let tag = branch.pointer("/properties/action/const").cloned();
        let required = result
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        branches.push((tag, required));
    }
    let common: Vec<Value> = branches
        .first()
        .map(|(_, first)| {
            first
                .iter()
                .filter(|name| branches.iter().all(|(_, r)| r.contains(name)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let one_of: Vec<Value> = branches
        .into_iter()
        .map(|(tag, required)| {
            let mut branch = Map::new();
            let mut names: Vec<Value> = Vec::new();
            if let Some(tag) = tag {
                branch.insert("properties".into(), json!({"action": {"const": tag}}));
                names.push(json!("action"));
            }
            names.extend(required.into_iter().filter(|name| !common.contains(name)));
            branch.insert("required".into(), Value::Array(names));
            Value::Object(branch)
        })
        .collect();
    if let Some(action) = full.get("properties").and_then(|p| p.get("action")) {
        properties.insert("action".into(), action.clone());
    }
    let mut schema = Map::new();
    schema.insert("oneOf".into(), Value::Array(one_of));
    schema.insert("properties".into(), Value::Object(properties));
    if !common.is_empty() {
        schema.insert("required".into(), Value::Array(common));
    }
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

/// `schema` with its `$ref` (into `defs`) followed, as often as it takes.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let mut current = schema;
    for _ in 0..8 {
        let Some(name) = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        else {
            break;
        };
        match defs.get(name) {
            Some(def) => current = def,
            None => break,
        }
    }
    current
}

/// A field's schema by type only: scalars keep their type and values,
/// arrays their items' (shallow) type, objects only `type: object`;
/// unions are merged ([`merge_types`]).
fn shallow(schema: &Value, defs: &Map<String, Value>) -> Value {
    let schema = resolve(schema, defs);
    let union = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(members) = union {
        let values: Option<Vec<Value>> = members
            .iter()
            .map(|m| resolve(m, defs).get("const").cloned())
            .collect();
        if let Some(values) = values {
            let mut out = Map::new();
            out.insert("enum".into(), Value::Array(values));
            if let Some(t) = members
                .first()
                .map(|m| resolve(m, defs))
                .and_then(|m| m.get("type"))
            {
                out.insert("type".into(), t.clone());
            }
            return Value::Object(out);
        }
        return members
            .iter()
            .map(|m| shallow(m, defs))
            .reduce(merge_types)
            .unwrap_or(Value::Bool(true));
    }
    let mut out = Map::new();
    for key in ["type", "enum", "const"] {
        if let Some(v) = schema.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(items) = schema.get("items") {
        out.insert("items".into(), shallow(items, defs));
    }
    Value::Object(out)
}

/// Declares `field` as `name` in `properties`, merging it with the type
/// another result gave the same name ([`merge_types`]).
fn merge(properties: &mut Map<String, Value>, name: &str, field: Value) {
    let merged = match properties.remove(name) {
        Some(known) => merge_types(known, field),
        None => field,
    };
    properties.insert(name.to_owned(), merged);
}

/// A schema either of `a` and `b` satisfies: one of them when they are
/// equal, the union of their types when both say only a type, else
/// `anyOf` of both (flattened, without repeats).
fn merge_types(a: Value, b: Value) -> Value {
    if a == b {
        return a;
    }
    let types_only = |v: &Value| {
        v.as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("type"))
            .map(|t| match t {
                Value::Array(many) => many.clone(),
                one => vec![one.clone()],
            })
    };
    if let (Some(mut ta), Some(tb)) = (types_only(&a), types_only(&b)) {
        for t in tb {
            if !ta.contains(&t) {
                ta.push(t);
            }
        }
        return json!({"type": ta});
    }
    let members = |v: Value| match v {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("anyOf") => {
            match o.remove("anyOf") {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            }
        }
        other => vec![other],
    };
    let mut all = members(a);
    for m in members(b) {
        if !all.contains(&m) {
            all.push(m);
        }
    }
    json!({"anyOf": all})
}

/// Drops every non-standard `format` keyword, at any depth.
fn strip_formats(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let nonstandard = map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !STANDARD_FORMATS.contains(&f));
            if nonstandard {
                map.remove("format");
            }
            map.values_mut().for_each(strip_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Args {
        /// How many.
        line_count: Option<u32>,
    }

    #[test]
    fn rust_integer_formats_are_dropped_and_ranges_kept() {
        let properties = input_properties::<Args>();
        let text = serde_json::to_string(&properties).unwrap_or_default();
        assert!(!text.contains("\"format\""), "{text}");
        assert!(text.contains("\"minimum\":0"), "{text}");
        assert!(properties["lineCount"].is_object());
    }

    #[test]
    fn standard_formats_stay() {
        let mut value =
            serde_json::json!({"a": {"format": "date-time"}, "b": [{"format": "int64"}]});
        strip_formats(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": {"format": "date-time"}, "b": [{}]})
        );
    }
}
