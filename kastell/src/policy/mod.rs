//! What may run where: SAFE_MODE, manual servers, provider tokens and
//! platforms, decided by one table ([`RULES`]) in one order for the CLI and
//! MCP alike.
//!
//! [`Policy::check`] applies, in this order: SAFE_MODE, the manual-server
//! rule, the token need, the platform need. The first refusal wins, is
//! returned as a kastell [`Error`] with a hint, and is appended to
//! `security.log`.

mod safe_mode;
mod table;

use std::path::Path;

use kastell_core::{Error, ErrorKind, Registry, Result};
use serde::Serialize;

use crate::env::Env;
use crate::security_log::{SecurityEvent, SecurityLog};
use crate::store::{ServerRecord, is_known_platform};

pub use safe_mode::{
    LEGACY_SAFE_MODE_VAR, SAFE_MODE_VAR, SafeModeReading, parse_bool, read_safe_mode, safe_mode,
};
pub use table::{Category, Operation, PlatformNeed, RULES, Refusal, Rule, Surface, TokenNeed};

/// The environment variable that holds a provider's API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenEnv {
    /// The variable name (`HETZNER_TOKEN`).
    pub var: String,
    /// Whether the name came from the provider's registry entry (`false`:
    /// the provider is not compiled in and `<PROVIDER>_TOKEN` was assumed).
    pub from_registry: bool,
}

impl TokenEnv {
    /// The token variable for `provider`: its registry entry's `token_env`,
    /// or `<PROVIDER>_TOKEN` (upper-cased, anything but letters and digits
    /// turned into `_`) when the provider is not compiled in.
    pub fn for_provider(provider: &str) -> Self {
        match Registry::global().provider(provider) {
            Ok(entry) => Self {
                var: entry.token_env.to_owned(),
                from_registry: true,
            },
            Err(_) => Self {
                var: format!(
                    "{}_TOKEN",
                    provider
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() {
                            c.to_ascii_uppercase()
                        } else {
                            '_'
                        })
                        .collect::<String>()
                ),
                from_registry: false,
            },
        }
    }
}

/// Whether the operation's token is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TokenStatus {
    /// No token is needed (the operation, or a manual server).
    NotNeeded,
    /// The token is there.
    Present {
        /// Provider id.
        provider: String,
        /// Where it is read from.
        env: TokenEnv,
    },
    /// An optional token is missing; provider steps will be skipped.
    Missing {
        /// Provider id.
        provider: String,
        /// Where it would be read from.
        env: TokenEnv,
    },
}

/// An operation the policy allowed, with what the caller needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The operation.
    pub op: Operation,
    /// Where it was requested.
    pub surface: Surface,
    /// Whether SAFE_MODE was on (the operation was not one it blocks).
    pub safe_mode: bool,
    /// The token situation.
    pub token: TokenStatus,
    /// Notes for the user (an optional token missing, a provider not
    /// compiled in).
    pub notes: Vec<String>,
}

/// Applies the policy table. Holds the environment to read SAFE_MODE from
/// (read on every check) and the security log refusals go to.
#[derive(Debug, Clone)]
pub struct Policy {
    env: Env,
    log: Option<SecurityLog>,
}

impl Policy {
    /// A policy reading `env` and logging refusals to `log` (`None`: not
    /// logged, for callers with no kastell directory).
    pub fn new(env: Env, log: Option<SecurityLog>) -> Self {
        Self { env, log }
    }

    /// A policy reading `env` and logging to `security.log` in `dir`.
    pub fn for_dir(env: Env, dir: &Path) -> Self {
        Self::new(env, Some(SecurityLog::in_dir(dir)))
    }

    /// The environment this policy reads.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Whether SAFE_MODE is on for `surface` right now (warnings go to
    /// stderr).
    pub fn safe_mode(&self, surface: Surface) -> bool {
        safe_mode(&self.env, surface).on
    }

    /// Whether `provider`'s token variable is set (and not blank) in this
    /// policy's environment.
    pub fn env_token_present(&self, provider: &str) -> bool {
        self.env
            .get_nonempty(&TokenEnv::for_provider(provider).var)
            .is_some()
    }

    /// SAFE_MODE alone, decided before the server is looked up; a refusal
    /// is logged naming `named`, the server the call asked for, when it is
    /// known (so `security.log` says which server an agent went for).
    pub fn check_safe_mode(
        &self,
        op: Operation,
        surface: Surface,
        named: Option<&ServerRecord>,
    ) -> Result<()> {
        let rule = op.rule();
        let reading = safe_mode(&self.env, surface);
        if let (true, Some(block)) = (reading.on, rule.safe_mode) {
            let err = Error::new(ErrorKind::PermissionDenied, block.error).with_hint(block.hint);
            return Err(self.refuse(rule, surface, named, &reading.source, err));
        }
        Ok(())
    }

    /// Decides whether `op` may run on `server` from `surface`.
    ///
    /// Checks, in this order, stopping at the first refusal:
    /// 1. SAFE_MODE (`PermissionDenied`, the table's message and hint);
    /// 2. manual servers, for operations that need a provider id
    ///    (`InvalidState`);
    /// 3. the token, via `token_present(provider)`, for cloud servers when
    ///    the table says it is required (`Unauthenticated`: `No API token
    ///    found for <provider>` / `Set <ENV> environment variable`); a cloud
    ///    server with no provider at all is refused (`InvalidState`);
    /// 4. the platform, when the table needs one: `bare` counts, an
    ///    unknown platform is refused (`InvalidState`).
    ///
    /// Server checks (2-4) apply only when `server` is given. Every refusal
    /// is appended to `security.log`; a failure to write the log is
    /// reported on stderr and never replaces the refusal.
    pub fn check(
        &self,
        op: Operation,
        surface: Surface,
        server: Option<&ServerRecord>,
        token_present: impl Fn(&str) -> bool,
    ) -> Result<Decision> {
        let rule = op.rule();
        let reading = safe_mode(&self.env, surface);
        let refuse = |err: Error, reason: &str| self.refuse(rule, surface, server, reason, err);
        if let (true, Some(block)) = (reading.on, rule.safe_mode) {
            let err = Error::new(ErrorKind::PermissionDenied, block.error).with_hint(block.hint);
            return Err(refuse(err, &reading.source));
        }
        let mut decision = Decision {
            op,
            surface,
            safe_mode: reading.on,
            token: TokenStatus::NotNeeded,
            notes: Vec::new(),
        };
        let Some(server) = server else {
            return Ok(decision);
        };
        if let (true, Some(manual)) = (server.is_manual(), rule.manual) {
            let err = Error::invalid_state(manual.error).with_hint(manual.hint);
            return Err(refuse(err, "manual server has no provider id"));
        }
        if rule.token != TokenNeed::None && !server.is_manual() {
            let Some(provider) = server.provider_id() else {
                let err = Error::invalid_state(format!(
                    "Server {} has no provider, so {op} cannot use a provider API",
                    server.name
                ))
                .with_hint("Set its provider in servers.json, or re-add it with --provider");
                return Err(refuse(err, "cloud server without provider"));
            };
            let env = TokenEnv::for_provider(provider);
            if !env.from_registry {
                decision.notes.push(format!(
                    "Provider {provider} is not compiled into this build; its token is looked up in {}",
                    env.var
                ));
            }
            let provider = provider.to_owned();
            if token_present(&provider) {
                decision.token = TokenStatus::Present { provider, env };
            } else if rule.token == TokenNeed::Required {
                let err = Error::new(
                    ErrorKind::Unauthenticated,
                    format!("No API token found for {provider}"),
                )
                .with_provider(provider.clone())
                .with_hint(format!("Set {} environment variable", env.var));
                return Err(refuse(err, &format!("missing API token ({})", env.var)));
            } else {
                decision.notes.push(format!(
                    "No API token found for {provider} ({} not set): provider steps will be skipped",
                    env.var
                ));
                decision.token = TokenStatus::Missing { provider, env };
            }
        }
        if rule.platform == PlatformNeed::Known {
            let platform = server.platform_id();
            if !is_known_platform(platform) {
                let err = Error::invalid_state(format!(
                    "Server {} has unknown platform {platform:?}",
                    server.name
                ))
                .with_hint(
                    "Set its platform to coolify or dokploy, or its mode to bare, in servers.json",
                );
                return Err(refuse(err, "unknown platform"));
            }
        }
        Ok(decision)
    }

    fn refuse(
        &self,
        rule: &Rule,
        surface: Surface,
        server: Option<&ServerRecord>,
        reason: &str,
        err: Error,
    ) -> Error {
        if let Some(log) = &self.log {
            log.record(&SecurityEvent::block(
                rule.action,
                rule.log_category(),
                reason,
                surface.as_str(),
                server.map(|s| s.name.as_str()),
            ));
        }
        err
    }
}

#[cfg(test)]
mod tests;
