//! Confirmation modes: who must say yes before an MCP call overwrites or
//! deletes something (backup-restore, snapshot-delete, snapshot-restore).
//!
//! `safety.json` may set `"confirm"` on the file, on each tag entry and on
//! each server entry. For one server the strictest of the entries that
//! apply to it wins (the file's, its tags', its own), in the order
//! `off` < `plan-token` < `ask` < `approve`; with none set the mode is
//! `ask`. What each proves:
//!
//! - `approve`: a person at the operator's terminal said yes (`kastell
//!   approve ID`); the model only learns the request's id.
//! - `ask`: a person using the client said yes (elicitation); a client that
//!   cannot ask is sent to `approve` instead.
//! - `plan-token`: a client that can ask still asks; one that cannot may
//!   confirm itself with a dry run's plan token, which proves only that the
//!   model asked twice.
//! - `off`: nothing; SAFE_MODE and the levels alone decide.

use serde::{Deserialize, Serialize};

use kastell_core::{Error, Result};

use super::level::{SAFETY_FILE, SafetyConfig};
use crate::state::store::ServerRecord;

/// Who confirms a destructive MCP call, weakest first (the order is the
/// precedence: the strictest applicable entry wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfirmMode {
    /// No confirmation.
    Off,
    /// The model's own dry run and plan token (clients that cannot ask).
    PlanToken,
    /// The person using the client; out-of-band approval when it cannot ask.
    Ask,
    /// The operator, out of band (`kastell approve`).
    Approve,
}

impl ConfirmMode {
    /// Every mode, weakest first.
    pub const ALL: [ConfirmMode; 4] = [Self::Off, Self::PlanToken, Self::Ask, Self::Approve];

    /// The mode when `safety.json` names none.
    pub const DEFAULT: ConfirmMode = Self::Ask;

    /// `off`, `plan-token`, `ask` or `approve`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::PlanToken => "plan-token",
            Self::Ask => "ask",
            Self::Approve => "approve",
        }
    }

    /// Parses a mode name (case-insensitive, surrounding blanks ignored);
    /// refuses anything else, naming the four modes.
    pub fn parse(value: &str) -> Result<Self> {
        let wanted = value.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == wanted)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "Unknown confirmation mode {}",
                    crate::state::store::display_safe(value)
                ))
                .with_hint("Set \"confirm\" to ask, approve, plan-token or off")
            })
    }
}

impl std::fmt::Display for ConfirmMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ConfirmMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ConfirmMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        ConfirmMode::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{}: use ask, approve, plan-token or off",
                e.message()
            ))
        })
    }
}

/// The mode in force for one server, and which entry set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    /// The mode.
    pub mode: ConfirmMode,
    /// Where it came from (`server db-1 in safety.json`, `tag prod in
    /// safety.json`, `safety.json confirm`, `default`).
    pub source: String,
}

impl SafetyConfig {
    /// The confirmation mode for `server`: the strictest `confirm` among
    /// the file's, its tags' and its own entry's; [`ConfirmMode::DEFAULT`]
    /// when none is set (or there is no file).
    pub fn confirmation(&self, server: Option<&ServerRecord>) -> Confirmation {
        let mut found: Option<Confirmation> = None;
        let mut consider = |mode: Option<ConfirmMode>, source: String| {
            if let Some(mode) = mode
                && found.as_ref().is_none_or(|f| mode > f.mode)
            {
                found = Some(Confirmation { mode, source });
            }
        };
        if let Some(file) = &self.file {
            consider(file.confirm, format!("{SAFETY_FILE} confirm"));
            if let Some(server) = server {
                for tag in &server.tags {
                    if let Some(entry) = file.tags.get(tag) {
                        consider(entry.confirm, format!("tag {tag} in {SAFETY_FILE}"));
                    }
                }
                if let Some(entry) = file.servers.get(&server.name) {
                    consider(
                        entry.confirm,
                        format!("server {} in {SAFETY_FILE}", server.name),
                    );
                }
            }
        }
        found.unwrap_or(Confirmation {
            mode: ConfirmMode::DEFAULT,
            source: "default".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SafetyFile;

    fn server(name: &str, tags: &[&str]) -> ServerRecord {
        let mut record = ServerRecord::new("manual-1", name, "203.0.113.10");
        record.tags = tags.iter().map(|t| (*t).to_owned()).collect();
        record
    }

    fn config(json: &str) -> SafetyConfig {
        SafetyConfig {
            file: Some(serde_json::from_str(json).unwrap()),
            path: None,
            ceiling: None,
        }
    }

    #[test]
    fn modes_parse_in_any_case_and_refuse_anything_else_naming_the_four() {
        assert_eq!(
            ConfirmMode::parse(" Plan-Token ").unwrap(),
            ConfirmMode::PlanToken
        );
        for mode in ConfirmMode::ALL {
            assert_eq!(ConfirmMode::parse(mode.as_str()).unwrap(), mode);
        }
        let err = ConfirmMode::parse("yes").unwrap_err();
        assert_eq!(err.kind(), kastell_core::ErrorKind::InvalidInput);
        assert!(
            err.hint()
                .unwrap()
                .contains("ask, approve, plan-token or off"),
            "{err:?}"
        );
        let bad = serde_json::from_str::<SafetyFile>(r#"{"servers": {"a": {"confirm": "never"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("Unknown confirmation mode")
                && bad.contains("ask, approve, plan-token or off"),
            "{bad}"
        );
    }

    #[test]
    fn without_a_setting_a_person_is_asked() {
        let none = SafetyConfig::default();
        assert_eq!(
            none.confirmation(Some(&server("web-1", &[]))).mode,
            ConfirmMode::Ask
        );
        let levels_only = config(r#"{"level": "destructive"}"#);
        let c = levels_only.confirmation(Some(&server("web-1", &["prod"])));
        assert_eq!((c.mode, c.source.as_str()), (ConfirmMode::Ask, "default"));
    }

    #[test]
    fn the_strictest_applicable_entry_wins_and_says_where_it_came_from() {
        let file = config(
            r#"{
                "confirm": "plan-token",
                "tags": {"prod": {"confirm": "approve"}, "lab": {"confirm": "off"}},
                "servers": {"db-1": {"confirm": "off"}, "web-9": {"confirm": "ask"}}
            }"#,
        );
        // A server's own weaker entry does not undo its tag's approve.
        let c = file.confirmation(Some(&server("db-1", &["prod"])));
        assert_eq!(c.mode, ConfirmMode::Approve);
        assert_eq!(c.source, "tag prod in safety.json");
        // Nor does a weaker tag undo the file's plan-token.
        let c = file.confirmation(Some(&server("box", &["lab"])));
        assert_eq!(c.mode, ConfirmMode::PlanToken);
        assert_eq!(c.source, "safety.json confirm");
        let c = file.confirmation(Some(&server("web-9", &["lab"])));
        assert_eq!(c.mode, ConfirmMode::Ask);
        assert_eq!(c.source, "server web-9 in safety.json");
        assert_eq!(file.confirmation(None).mode, ConfirmMode::PlanToken);
        let off = config(r#"{"servers": {"lab-1": {"confirm": "off"}}}"#);
        assert_eq!(
            off.confirmation(Some(&server("lab-1", &[]))).mode,
            ConfirmMode::Off
        );
        assert!(ConfirmMode::Off < ConfirmMode::PlanToken);
        assert!(ConfirmMode::PlanToken < ConfirmMode::Ask);
        assert!(ConfirmMode::Ask < ConfirmMode::Approve);
    }
}
