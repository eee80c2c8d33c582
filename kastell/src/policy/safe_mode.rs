//! SAFE_MODE: the switch that blocks destructive and billable operations.
//!
//! `KASTELL_SAFE_MODE` wins; the legacy `QUICKLIFY_SAFE_MODE` is honoured
//! when it is unset, with a one-time deprecation warning. Values are read
//! case-insensitively: `true/1/yes/on` mean on, `false/0/no/off` mean off,
//! anything else (including an empty value) means on, with a warning
//! (fail closed). Unset means the surface's default: on for MCP, off for
//! the CLI. The environment is read on every call, never cached.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::env::Env;

use super::Surface;

/// The SAFE_MODE environment variable.
pub const SAFE_MODE_VAR: &str = "KASTELL_SAFE_MODE";
/// The deprecated name still honoured.
pub const LEGACY_SAFE_MODE_VAR: &str = "QUICKLIFY_SAFE_MODE";

/// Parses a boolean the way every `KASTELL_*` switch is read (see
/// [`crate::env::parse_switch`]).
pub use crate::env::parse_switch as parse_bool;

/// What the environment says about SAFE_MODE, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeModeReading {
    /// Whether SAFE_MODE is on.
    pub on: bool,
    /// Where the value came from, for logs (`KASTELL_SAFE_MODE=true`,
    /// `default for mcp`, ...).
    pub source: String,
    /// Whether the legacy variable supplied the value.
    pub legacy: bool,
    /// Whether neither variable is set (the value is the surface's
    /// default).
    pub defaulted: bool,
    /// Warnings for stderr (an unrecognised value).
    pub warnings: Vec<String>,
}

/// Reads SAFE_MODE from `env` for `surface` without printing anything.
pub fn read_safe_mode(env: &Env, surface: Surface) -> SafeModeReading {
    let (var, value, legacy) = match env.get(SAFE_MODE_VAR) {
        Some(v) => (SAFE_MODE_VAR, v, false),
        None => match env.get(LEGACY_SAFE_MODE_VAR) {
            Some(v) => (LEGACY_SAFE_MODE_VAR, v, true),
            None => {
                let on = surface == Surface::Mcp;
                return SafeModeReading {
                    on,
                    source: format!("default for {}", surface.as_str()),
                    legacy: false,
                    defaulted: true,
                    warnings: Vec::new(),
                };
            }
        },
    };
    let shown: String = value.chars().take(40).collect();
    match parse_bool(&value) {
        Some(on) => SafeModeReading {
            on,
            source: format!("{var}={}", value.trim()),
            legacy,
            defaulted: false,
            warnings: Vec::new(),
        },
        None => SafeModeReading {
            on: true,
            source: format!("{var}={shown:?} (unrecognised, fail closed)"),
            legacy,
            defaulted: false,
            warnings: vec![format!(
                "Warning: {var}={shown:?} is not a recognized boolean. Use \"true\" or \"false\". Defaulting to safe mode."
            )],
        },
    }
}

static LEGACY_WARNED: AtomicBool = AtomicBool::new(false);

/// Reads SAFE_MODE from `env` for `surface`, writing its warnings to
/// stderr (through `tracing`): an unrecognised value on every call, the
/// legacy-variable deprecation once per process.
pub fn safe_mode(env: &Env, surface: Surface) -> SafeModeReading {
    let reading = read_safe_mode(env, surface);
    if reading.legacy && !LEGACY_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "Warning: {LEGACY_SAFE_MODE_VAR} is deprecated; use {SAFE_MODE_VAR} instead."
        );
    }
    for warning in &reading.warnings {
        tracing::warn!("{warning}");
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_parsing_matrix() {
        for on in [
            "true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true ",
        ] {
            assert_eq!(parse_bool(on), Some(true), "{on:?}");
        }
        for off in ["false", "FALSE", "0", "no", "No", "off", "OFF", "\tfalse\n"] {
            assert_eq!(parse_bool(off), Some(false), "{off:?}");
        }
        for other in [
            "", " ", "2", "y", "n", "enabled", "truee", "t", "-1", "nope",
        ] {
            assert_eq!(parse_bool(other), None, "{other:?}");
        }
    }

    #[test]
    fn unset_uses_the_surface_default() {
        let env = with(&[]);
        assert!(read_safe_mode(&env, Surface::Mcp).on);
        assert!(!read_safe_mode(&env, Surface::Cli).on);
        assert!(read_safe_mode(&env, Surface::Mcp).warnings.is_empty());
    }

    #[test]
    fn explicit_values_override_both_defaults() {
        for surface in [Surface::Cli, Surface::Mcp] {
            assert!(read_safe_mode(&with(&[(SAFE_MODE_VAR, "yes")]), surface).on);
            assert!(!read_safe_mode(&with(&[(SAFE_MODE_VAR, "off")]), surface).on);
        }
    }

    #[test]
    fn unrecognised_values_fail_closed_with_the_original_warning() {
        for surface in [Surface::Cli, Surface::Mcp] {
            for value in ["maybe", "", "enable"] {
                let reading = read_safe_mode(&with(&[(SAFE_MODE_VAR, value)]), surface);
                assert!(reading.on, "{value:?}");
                assert_eq!(
                    reading.warnings,
                    vec![format!(
                        "Warning: KASTELL_SAFE_MODE=\"{value}\" is not a recognized boolean. Use \"true\" or \"false\". Defaulting to safe mode."
                    )]
                );
            }
        }
    }

    #[test]
    fn legacy_variable_is_honoured_only_when_the_new_one_is_unset() {
        let legacy = read_safe_mode(&with(&[(LEGACY_SAFE_MODE_VAR, "false")]), Surface::Mcp);
        assert!(!legacy.on);
        assert!(legacy.legacy);
        let both = read_safe_mode(
            &with(&[(SAFE_MODE_VAR, "true"), (LEGACY_SAFE_MODE_VAR, "false")]),
            Surface::Cli,
        );
        assert!(both.on);
        assert!(!both.legacy);
        let bad = read_safe_mode(&with(&[(LEGACY_SAFE_MODE_VAR, "x")]), Surface::Cli);
        assert!(bad.on);
        assert!(bad.warnings[0].starts_with("Warning: QUICKLIFY_SAFE_MODE=\"x\""));
        // The printing variant returns the same reading.
        assert_eq!(
            safe_mode(&with(&[(LEGACY_SAFE_MODE_VAR, "x")]), Surface::Cli),
            bad
        );
    }
}
