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
//! - free of `$schema` (the spec's default dialect, 2020-12, applies).

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
        serde_json::json!({"action": {"enum": tags, "type": "string"}}),
    );
    schema.insert("type".into(), Value::String("object".into()));
    schema
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
