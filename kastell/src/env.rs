//! Injectable environment lookups.
//!
//! Everything in kastell that reads an environment variable (SAFE_MODE,
//! `KASTELL_DIR`, `KASTELL_ALLOW_PRIVATE_IPS`, provider tokens) goes through
//! [`Env`], so tests can pass a fixed set of variables instead of mutating
//! the process environment (which is `unsafe` in edition 2024, and this
//! workspace forbids `unsafe`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// A source of environment variables: the live process environment, or a
/// fixed map for tests.
///
/// The process variant reads the environment on every call; nothing is
/// cached, so a value changed between two calls is seen by the second.
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<Arc<BTreeMap<String, String>>>,
    overlay: Option<Arc<BTreeMap<String, String>>>,
}

impl Env {
    /// The live process environment.
    pub fn process() -> Self {
        Self::default()
    }

    /// A fixed environment holding exactly `vars` and nothing else.
    pub fn from_pairs<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let map = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self {
            fixed: Some(Arc::new(map)),
            overlay: None,
        }
    }

    /// This environment with `vars` set on top: they win over the
    /// underlying values (and over earlier overlays); everything else is
    /// read as before. The sandbox uses it to point providers at its
    /// simulators whatever the process environment says.
    pub fn overlaid<K, V>(&self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = self.overlay.as_deref().cloned().unwrap_or_default();
        map.extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        Self {
            fixed: self.fixed.clone(),
            overlay: Some(Arc::new(map)),
        }
    }

    /// The value of `name`, or `None` when it is unset. A value that is not
    /// valid UTF-8 is returned lossily converted, never dropped, so a
    /// garbled SAFE_MODE value still counts as "set".
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.overlay.as_ref().and_then(|m| m.get(name)) {
            return Some(value.clone());
        }
        match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    }

    /// The value of `name` trimmed, or `None` when it is unset, empty or
    /// only white space.
    pub fn get_nonempty(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The switch `name` as [`parse_switch`] reads it: `None` when unset or
    /// not a recognised value (the caller decides which way that fails).
    pub fn switch(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(|v| parse_switch(&v))
    }

    /// Whether the switch `name` is on: `true/1/yes/on`. Unset, off or an
    /// unrecognised value is `false` (for switches that loosen a check, such
    /// as `KASTELL_ALLOW_PRIVATE_IPS` and `KASTELL_STRICT_HOST_KEY`'s
    /// opposite, failing towards the default).
    pub fn is_on(&self, name: &str) -> bool {
        self.switch(name) == Some(true)
    }
}

/// Reads a boolean switch, the one way every `KASTELL_*` switch is read:
/// `Some(true)` for `true/1/yes/on`, `Some(false)` for `false/0/no/off`
/// (case-insensitive, surrounding white space ignored), `None` for
/// anything else.
pub fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_env_sees_only_its_pairs() {
        let env = Env::from_pairs([("A", " x "), ("B", "  "), ("C", "TRUE")]);
        assert_eq!(env.get("A").as_deref(), Some(" x "));
        assert_eq!(env.get_nonempty("A").as_deref(), Some("x"));
        assert_eq!(env.get_nonempty("B"), None);
        assert_eq!(env.get("PATH"), None);
        assert!(env.is_on("C"));
        assert!(!env.is_on("A"));
        assert!(!env.is_on("MISSING"));
        assert_eq!(env.switch("A"), None);
    }

    #[test]
    fn every_switch_reads_the_same_words() {
        for on in ["true", "1", "yes", "on", " TRUE ", "On"] {
            assert_eq!(parse_switch(on), Some(true), "{on:?}");
            assert!(Env::from_pairs([("S", on)]).is_on("S"), "{on:?}");
        }
        for off in ["false", "0", "no", "off", "OFF "] {
            assert_eq!(parse_switch(off), Some(false), "{off:?}");
            assert!(!Env::from_pairs([("S", off)]).is_on("S"), "{off:?}");
        }
        for other in ["", "2", "enabled", "tru"] {
            assert_eq!(parse_switch(other), None, "{other:?}");
        }
    }

    #[test]
    fn process_env_reads_live_values() {
        // PATH is set in every test environment we run in.
        assert!(Env::process().get("PATH").is_some());
    }

    #[test]
    fn overlay_wins_and_leaves_the_rest_alone() {
        let base = Env::from_pairs([("A", "base"), ("B", "kept")]);
        let env = base.overlaid([("A", "over")]).overlaid([("C", "new")]);
        assert_eq!(env.get("A").as_deref(), Some("over"));
        assert_eq!(env.get("B").as_deref(), Some("kept"));
        assert_eq!(env.get("C").as_deref(), Some("new"));
        assert_eq!(base.get("A").as_deref(), Some("base"));
        let live = Env::process().overlaid([("KASTELL_TEST_OVERLAY", "1")]);
        assert!(live.get("PATH").is_some());
        assert_eq!(live.get("KASTELL_TEST_OVERLAY").as_deref(), Some("1"));
    }
}
