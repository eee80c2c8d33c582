//! [`Reply`]: the one envelope every operation on a server answers with.
//!
//! The original tool's payloads all begin `success`, `server`, `ip` and end
//! with `suggested_actions`; what lies between is the operation's own. Each
//! operation declares only that middle part (its body, such as
//! [`super::BackupRestore`]) and wraps it in a `Reply`, so the shared fields
//! are written, documented and generated in one place. The fleet-wide
//! listing, which names no one server, has a shape of its own.

use std::borrow::Cow;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use serde_json::Value;

use super::suggest::Suggestion;
use crate::state::store::ServerRecord;

/// A successful operation on one server: the shared fields around the
/// operation's own `body`, which serialises flattened between them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply<T> {
    /// Always `true`: a failure is an [`super::OpError`], not a reply.
    pub success: bool,
    /// The server's name.
    pub server: String,
    /// The server's IP.
    pub ip: String,
    /// What the operation itself reports.
    #[serde(flatten)]
    pub body: T,
    /// Next steps the policy allows.
    #[serde(rename = "suggested_actions")]
    pub suggested_actions: Vec<Suggestion>,
}

impl<T> Reply<T> {
    /// The reply of an operation on `server` that produced `body`, offering
    /// `suggested_actions` (already filtered by the policy).
    pub fn on(server: &ServerRecord, body: T, suggested_actions: Vec<Suggestion>) -> Self {
        Self {
            success: true,
            server: server.name.clone(),
            ip: server.ip.clone(),
            body,
            suggested_actions,
        }
    }
}

/// The body's fields read through the reply (`reply.backup_id`).
impl<T> Deref for Reply<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.body
    }
}

/// The body's schema (its description and fields) with the shared fields
/// added, named `<Body>Result` (`BackupRestoreResult`).
impl<T: JsonSchema> JsonSchema for Reply<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}Result", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("kastell::ops::Reply<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = T::json_schema(generator);
        let shared = [
            ("success", described::<bool>(generator, "Always `true`.")),
            ("server", described::<String>(generator, "Server name.")),
            ("ip", described::<String>(generator, "Server IP.")),
            (
                "suggested_actions",
                described::<Vec<Suggestion>>(generator, "Next steps the policy allows."),
            ),
        ];
        let object = schema.ensure_object();
        let properties = object
            .entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(properties) = properties {
            for (name, field) in &shared {
                properties.insert((*name).to_owned(), field.clone().to_value());
            }
        }
        let body_required = match object.remove("required") {
            Some(Value::Array(names)) => names,
            _ => Vec::new(),
        };
        let mut required: Vec<Value> = ["success", "server", "ip"]
            .into_iter()
            .map(Value::from)
            .collect();
        required.extend(body_required);
        required.push(Value::from("suggested_actions"));
        object.insert("required".to_owned(), Value::Array(required));
        schema
    }
}

/// `F`'s schema with `description`.
fn described<F: JsonSchema>(generator: &mut SchemaGenerator, description: &str) -> Schema {
    let mut schema = generator.subschema_for::<F>();
    if schema.as_bool() == Some(true) {
        schema = json_schema!({});
    }
    schema.insert("description".to_owned(), Value::from(description));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body for the tests.
    #[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        /// The probe's own field.
        backup_id: String,
        /// Optional, so not required.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    }

    #[test]
    fn the_shared_fields_surround_the_body_on_the_wire_and_in_the_schema() {
        let server = ServerRecord::new("manual-1", "web-1", "203.0.113.10");
        let body = Probe {
            backup_id: "2026-01-01_00-00-00-000".into(),
            note: None,
        };
        let reply = Reply::on(&server, body, Vec::new());
        assert_eq!(reply.backup_id, "2026-01-01_00-00-00-000", "deref");
        let json = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "success": true,
                "server": "web-1",
                "ip": "203.0.113.10",
                "backupId": "2026-01-01_00-00-00-000",
                "suggested_actions": []
            })
        );

        assert_eq!(Reply::<Probe>::schema_name(), "ProbeResult");
        let schema = serde_json::to_value(schemars::schema_for!(Reply<Probe>)).unwrap();
        assert_eq!(schema["description"], "A body for the tests.");
        assert_eq!(
            schema["required"],
            serde_json::json!(["success", "server", "ip", "backupId", "suggested_actions"])
        );
        for field in [
            "success",
            "server",
            "ip",
            "backupId",
            "note",
            "suggested_actions",
        ] {
            assert!(
                schema["properties"][field]["description"].is_string(),
                "{field}: {schema}"
            );
        }
        // Every property the reply serialises is declared.
        for key in json.as_object().unwrap().keys() {
            assert!(schema["properties"].get(key).is_some(), "{key}");
        }
    }
}
