//! The tools' JSON Schemas, as every MCP client accepts them.
//!
//! The MCP specification (2025-06-18 and later) requires `type: "object"` at
//! the root of every tool's `inputSchema` and `outputSchema`, and the
//! official SDKs enforce it: the TypeScript SDK rejects a whole `tools/list`
//! whose output schema is a bare `oneOf`, and warns about every format it
//! does not know. schemars writes a tagged enum as a root `oneOf` and Rust
//! integers with its own formats (`uint32`, `int64`, ...). This module turns
//! schemars' output into schemas that are:
//!
//! - rooted at `type: "object"` (a tagged union keeps its `oneOf` branches
//!   and gains the tag as a top-level, required property);
//! - free of non-standard `format`s (ranges stay as `minimum`/`maximum`);
//! - free of `$schema` (the spec's default dialect, 2020-12, applies) and of
//!   the Rust type's own title and description;
//! - closed for inputs: `additionalProperties: false`, so a client that
//!   validates arguments refuses a misspelt one before it is sent (kastell
//!   refuses it anyway, see [`super::params`]).

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

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

/// The input schema of `T` (what its `Deserialize` accepts), closed to
/// unknown properties.
pub(crate) fn input<T: JsonSchema>() -> Arc<JsonObject> {
    let mut schema = generate::<T>(SchemaSettings::draft2020_12());
    root_object(&mut schema);
    schema.insert("additionalProperties".into(), Value::Bool(false));
    Arc::new(schema)
}

/// The output schema of a tool whose successes are `T` (a tagged union)
/// and whose `isError` results carry an `F`: `T`'s schema with `F` as one
/// more `oneOf` branch, so the tag is no longer required at the root.
/// Clients (the TypeScript SDK among them) validate the structured content
/// of error results too.
pub(crate) fn output_or_failure<T: JsonSchema, F: JsonSchema>() -> Arc<JsonObject> {
    let settings = || SchemaSettings::draft2020_12().for_serialize();
    let mut schema = generate::<T>(settings());
    root_object(&mut schema);
    let mut failure = generate::<F>(settings());
    let name = F::schema_name().into_owned();
    let mut defs = match failure.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    defs.insert(name.clone(), Value::Object(failure));
    if let Value::Object(ours) = schema
        .entry("$defs")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        for (key, def) in defs {
            ours.entry(key).or_insert(def);
        }
    }
    if let Some(Value::Array(branches)) = schema.get_mut("oneOf") {
        branches.push(serde_json::json!({"$ref": format!("#/$defs/{name}")}));
    }
    schema.remove("required");
    Arc::new(schema)
}

/// schemars' schema for `T` with `settings`, cleaned of what clients
/// trip on. A schema that is not an object (schemars writes `true` for
/// "anything") becomes the empty object schema.
fn generate<T: JsonSchema>(settings: SchemaSettings) -> JsonObject {
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut value = serde_json::to_value(schema).unwrap_or(Value::Bool(true));
    strip_formats(&mut value);
    let mut object = match value {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    for key in ["$schema", "title", "description"] {
        object.remove(key);
    }
    object
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

/// Makes the root `type: "object"`. A root union of object branches (a
/// serde-tagged enum) also gets its tag, the one property every branch
/// requires as a constant, as a top-level required property listing every
/// branch's value.
fn root_object(schema: &mut JsonObject) {
    schema.insert("type".into(), Value::String("object".into()));
    let Some(Value::Array(branches)) = schema.get("oneOf") else {
        schema
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        return;
    };
    let Some((tag, values)) = union_tag(branches) else {
        return;
    };
    let mut tag_schema = Map::new();
    tag_schema.insert("type".into(), Value::String("string".into()));
    tag_schema.insert("enum".into(), Value::Array(values));
    let mut properties = Map::new();
    properties.insert(tag.clone(), Value::Object(tag_schema));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), Value::Array(vec![Value::String(tag)]));
}

/// The tag of a union: a property every branch requires with a `const`
/// string value, and those values in branch order.
fn union_tag(branches: &[Value]) -> Option<(String, Vec<Value>)> {
    let first = branches.first()?.get("properties")?.as_object()?;
    first.keys().find_map(|candidate| {
        let values: Option<Vec<Value>> = branches
            .iter()
            .map(|branch| {
                let required = branch.get("required")?.as_array()?;
                if !required.iter().any(|r| r == candidate) {
                    return None;
                }
                let value = branch.get("properties")?.get(candidate)?.get("const")?;
                value.is_string().then(|| value.clone())
            })
            .collect();
        values.map(|v| (candidate.clone(), v))
    })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    /// `T`'s output schema alone, without a failure branch.
    fn output<T: JsonSchema>() -> Arc<JsonObject> {
        let mut schema = generate::<T>(SchemaSettings::draft2020_12().for_serialize());
        root_object(&mut schema);
        Arc::new(schema)
    }

    #[derive(Serialize, JsonSchema)]
    #[serde(tag = "action")]
    #[allow(dead_code)]
    enum Tagged {
        #[serde(rename = "one")]
        One { count: u32 },
        #[serde(rename = "two")]
        Two { size: u64, name: String },
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Args {
        /// How many.
        line_count: Option<u32>,
    }

    #[test]
    fn a_tagged_union_gets_an_object_root_with_its_tag() {
        let schema = Value::Object(output::<Tagged>().as_ref().clone());
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["properties"]["action"]["enum"],
            serde_json::json!(["one", "two"])
        );
        assert_eq!(schema["required"], serde_json::json!(["action"]));
        assert_eq!(schema["oneOf"].as_array().map(Vec::len), Some(2));
        assert!(schema.get("$schema").is_none());
    }

    #[derive(Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Failure {
        error: String,
    }

    #[test]
    fn a_failure_is_one_more_branch_and_the_tag_is_no_longer_required() {
        let schema = Value::Object(output_or_failure::<Tagged, Failure>().as_ref().clone());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["oneOf"].as_array().map(Vec::len), Some(3));
        assert_eq!(schema["oneOf"][2]["$ref"], "#/$defs/Failure");
        assert_eq!(
            schema["$defs"]["Failure"]["required"],
            serde_json::json!(["error"])
        );
        assert!(schema.get("required").is_none());
        assert_eq!(
            schema["properties"]["action"]["enum"],
            serde_json::json!(["one", "two"])
        );
    }

    #[test]
    fn rust_integer_formats_are_dropped_and_ranges_kept() {
        let text = serde_json::to_string(output::<Tagged>().as_ref()).unwrap_or_default();
        assert!(!text.contains("\"format\""), "{text}");
        assert!(text.contains("\"minimum\":0"), "{text}");
        let text = serde_json::to_string(input::<Args>().as_ref()).unwrap_or_default();
        assert!(!text.contains("uint"), "{text}");
    }

    #[test]
    fn inputs_are_closed_objects_and_standard_formats_stay() {
        let schema = Value::Object(input::<Args>().as_ref().clone());
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert!(schema["properties"]["lineCount"].is_object());
        let mut value =
            serde_json::json!({"a": {"format": "date-time"}, "b": [{"format": "int64"}]});
        strip_formats(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": {"format": "date-time"}, "b": [{}]})
        );
    }
}
