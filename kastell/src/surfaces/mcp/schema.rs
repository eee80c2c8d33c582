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
//! - lean where an agent reads them in every session: an optional
//!   argument is declared by its type alone ([`properties_of`]), and output
//!   schemas are typed field by field, without prose or definitions, each
//!   type said once for every field that has it ([`lean`]).

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

/// The properties of an argument schema, cleaned: references into its
/// `$defs` written out in place (a tool's input schema has no `$defs` of
/// its own, so a reference would point nowhere), each optional one
/// declared by its type alone ([`optional_by_type`]).
pub(crate) fn properties_of(schema: schemars::Schema) -> Map<String, Value> {
    let Value::Object(mut object) = value_of(schema) else {
        return Map::new();
    };
    let defs = match object.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let mut properties = match object.remove("properties") {
        Some(Value::Object(properties)) => properties,
        _ => Map::new(),
    };
    for property in properties.values_mut() {
        inline(property, &defs, 0);
        optional_by_type(property);
    }
    properties
}

/// `schema` with every `$ref` into `defs` replaced by the definition (its
/// own keywords, such as a description or default, kept beside it), to a
/// depth of 8.
fn inline(schema: &mut Value, defs: &Map<String, Value>, depth: usize) {
    if depth > 8 {
        return;
    }
    match schema {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|name| defs.get(name));
            if let Some(Value::Object(def)) = target {
                map.remove("$ref");
                for (key, value) in def {
                    if key != "description" || !map.contains_key(key) {
                        map.insert(key.clone(), value.clone());
                    }
                }
            }
            map.values_mut()
                .for_each(|value| inline(value, defs, depth + 1));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|value| inline(value, defs, depth + 1)),
        _ => {}
    }
}

/// An optional argument's schema without what absence already says: a
/// `null` default and `null` among its types or alternatives (absent is
/// none; the call parser still takes an explicit `null` as absent, see
/// [`super::strict`]), and a `false` default of a flag. Other defaults
/// stay: they say what an absent argument means. Alternatives that are
/// all constants become one `enum`.
pub(crate) fn optional_by_type(property: &mut Value) {
    let Value::Object(property) = property else {
        return;
    };
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(mut members)) = property.remove(key) else {
            continue;
        };
        members.retain(|m| m != &json!({"type": "null"}));
        if let [Value::Object(one)] = members.as_slice() {
            for (k, v) in one {
                if !property.contains_key(k) {
                    property.insert(k.clone(), v.clone());
                }
            }
            continue;
        }
        let consts: Option<Vec<Value>> = members.iter().map(|m| m.get("const").cloned()).collect();
        match consts {
            Some(values) if !values.is_empty() => {
                if let Some(t) = members.first().and_then(|m| m.get("type")) {
                    property.insert("type".into(), t.clone());
                }
                property.insert("enum".into(), Value::Array(values));
            }
            _ => {
                property.insert(key.into(), Value::Array(members));
            }
        }
    }
    if matches!(
        property.get("default"),
        Some(Value::Null | Value::Bool(false))
    ) {
        property.remove("default");
    }
    let single = match property.get_mut("type") {
        Some(Value::Array(types)) => {
            types.retain(|t| t != "null");
            match types.as_slice() {
                [one] => Some(one.clone()),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(one) = single {
        property.insert("type".into(), one);
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
///   keep their values; fields of the same type share one declaration
///   ([`by_type`]);
/// - each `oneOf` branch is an action's tag (`const`, the one place the
///   tag's values are listed) and the fields its result always has
///   (`required`), the failure's branch its own; what every branch
///   requires is required at the root instead;
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
    if full
        .get("properties")
        .and_then(|p| p.get("action"))
        .is_some()
    {
        // Each branch names its own tag (`const`): the root says only
        // that the tag is a string.
        properties.insert("action".into(), json!({"type": "string"}));
    }
    let patterns = by_type(&mut properties);
    let mut schema = Map::new();
    schema.insert("oneOf".into(), Value::Array(one_of));
    if !patterns.is_empty() {
        schema.insert("patternProperties".into(), Value::Object(patterns));
    }
    schema.insert("properties".into(), Value::Object(properties));
    if !common.is_empty() {
        schema.insert("required".into(), Value::Array(common));
    }
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

/// Takes out of `properties` the fields that share their type with
/// another field and declares each such type once, for all their names:
/// a `patternProperties` entry `^(a|b|c)$` (names of letters, digits and
/// `_` only, so the pattern needs no escaping; other names stay where they
/// are). A result validates against the grouped form exactly as against
/// the field-by-field one.
fn by_type(properties: &mut Map<String, Value>) -> Map<String, Value> {
    let plain = |name: &str| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut groups: Vec<(Value, Vec<String>)> = Vec::new();
    for (name, field) in properties.iter() {
        if !plain(name) {
            continue;
        }
        match groups.iter_mut().find(|(t, _)| t == field) {
            Some((_, names)) => names.push(name.clone()),
            None => groups.push((field.clone(), vec![name.clone()])),
        }
    }
    let mut patterns = Map::new();
    for (field, names) in groups.into_iter().filter(|(_, names)| names.len() > 1) {
        for name in &names {
            properties.remove(name);
        }
        patterns.insert(format!("^({})$", names.join("|")), field);
    }
    patterns
}

#[cfg(test)]
/// The schema `lean` declares the field `name` with: its own property, or
/// the `patternProperties` entry that names it ([`by_type`]).
pub(crate) fn declared<'a>(lean: &'a Value, name: &str) -> Option<&'a Value> {
    lean.pointer("/properties")
        .and_then(|p| p.get(name))
        .or_else(|| {
            lean.get("patternProperties")
                .and_then(Value::as_object)?
                .iter()
                .find(|(pattern, _)| {
                    pattern
                        .strip_prefix("^(")
                        .and_then(|p| p.strip_suffix(")$"))
                        .is_some_and(|names| names.split('|').any(|n| n == name))
                })
                .map(|(_, field)| field)
        })
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

    #[derive(Deserialize, serde::Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Work {
        /// The first.
        Maintain,
        /// The second.
        Update,
    }

    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Optional {
        /// Which work.
        #[serde(default)]
        work: Option<Work>,
        /// What to do.
        #[serde(default = "maintain")]
        kind: Work,
        /// A flag.
        #[serde(default)]
        flag: bool,
        /// A name.
        #[serde(default)]
        name: Option<String>,
    }

    fn maintain() -> Work {
        Work::Maintain
    }

    /// An optional argument is its type alone, an enumeration (also one
    /// behind a reference, which a tool's input schema could not resolve)
    /// its values, and a default that says something stays.
    #[test]
    fn optional_arguments_are_declared_by_their_type() {
        let properties = input_properties::<Optional>();
        assert_eq!(
            Value::Object(properties),
            json!({
                "work": {"description": "Which work.", "enum": ["maintain", "update"], "type": "string"},
                "kind": {"default": "maintain", "description": "What to do.", "enum": ["maintain", "update"], "type": "string"},
                "flag": {"description": "A flag.", "type": "boolean"},
                "name": {"description": "A name.", "type": "string"},
            })
        );
    }

    /// Fields of one type share one declaration, which validates as the
    /// field-by-field one did; the tags stay in their branches.
    #[test]
    fn lean_declares_each_type_once() {
        let full = json!({
            "oneOf": [
                {"properties": {"action": {"const": "a"}}, "$ref": "#/$defs/A"},
                {"required": ["error"], "properties": {"error": {"type": "string"}}},
            ],
            "$defs": {"A": {"properties": {
                "one": {"type": "string", "description": "x"},
                "two": {"type": "string"},
                "count": {"type": "integer"},
            }, "required": ["one", "count"]}},
            "properties": {"action": {"enum": ["a"], "type": "string"}},
            "type": "object",
        });
        let Value::Object(full) = full else {
            unreachable!()
        };
        let lean = Value::Object(lean(&full));
        assert_eq!(
            lean["patternProperties"],
            json!({"^(action|error|one|two)$": {"type": "string"}})
        );
        assert_eq!(lean["properties"], json!({"count": {"type": "integer"}}));
        assert_eq!(declared(&lean, "two"), Some(&json!({"type": "string"})));
        assert_eq!(declared(&lean, "count"), Some(&json!({"type": "integer"})));
        assert_eq!(declared(&lean, "tw"), None);
        assert_eq!(
            lean["oneOf"][0],
            json!({"properties": {"action": {"const": "a"}}, "required": ["action", "one", "count"]})
        );
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
