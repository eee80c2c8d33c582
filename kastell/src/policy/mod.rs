//! What may run where: SAFE_MODE, manual servers, provider tokens and
//! platforms, decided by each operation's row ([`Rule`]) in one order for the CLI and
//! MCP alike.
//!
//! [`Policy::check`] applies, in this order: a safety configuration that
//! cannot be read (refusing all but reads with its own error), SAFE_MODE,
//! the safety level and maintenance windows ([`level`]), the manual-server
//! rule, the token need, the platform need. The first refusal wins, is returned as a
//! kastell [`Error`] with a hint, and is appended to `security.log`.

mod confirm;
mod level;
mod safe_mode;
mod table;

use std::path::{Path, PathBuf};

use kastell_core::{Error, ErrorKind, Registry, Result, Secret};
use serde::Serialize;

use crate::env::Env;
use crate::state::security_log::{SecurityEvent, SecurityLog};
use crate::state::store::{ServerRecord, is_known_platform};

pub use confirm::{ConfirmMode, Confirmation};
pub use level::{
    Allowance, EntryWindows, SAFETY_FILE, SAFETY_LEVEL_VAR, SafetyConfig, SafetyEntry, SafetyFile,
    SafetyLevel, Window,
};
pub use safe_mode::{
    LEGACY_SAFE_MODE_VAR, SAFE_MODE_VAR, SafeModeReading, parse_bool, read_safe_mode, safe_mode,
};
pub use table::{Category, OpId, PlatformNeed, Refusal, Rule, Surface, TokenNeed};

/// The reason `security.log` gives for a refusal because the safety
/// configuration could not be read.
const UNREADABLE: &str = "safety configuration unreadable";

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

impl TokenEnv {
    /// The variable for `provider`'s token of `account`: the provider's
    /// own variable for the default account (`None` or `default`), else
    /// that name with the account upper-cased after it
    /// (`HETZNER_TOKEN_CLIENT_A` for account `client-a`).
    pub fn for_account(provider: &str, account: Option<&str>) -> Self {
        let base = Self::for_provider(provider);
        match account.filter(|a| *a != crate::state::tokens::DEFAULT_ACCOUNT) {
            None => base,
            Some(account) => Self {
                var: format!(
                    "{}_{}",
                    base.var,
                    account.to_ascii_uppercase().replace('-', "_")
                ),
                ..base
            },
        }
    }
}

/// `provider`'s token of `account` (the default account when `None`): its
/// environment variable ([`TokenEnv::for_account`]) first, then what
/// `kastell auth set` stored: in the session's keychain, else in `dir`
/// (the kastell directory, when known). A stored-tokens file that cannot be read counts as no token,
/// with a warning. Never logs the token.
pub fn find_token(
    env: &Env,
    dir: Option<&Path>,
    provider: &str,
    account: Option<&str>,
) -> Option<Secret> {
    if let Some(value) = env.get_nonempty(&TokenEnv::for_account(provider, account).var) {
        return Some(Secret::new(value));
    }
    let dir = dir?;
    match crate::state::tokens::TokenStore::for_env(dir, env).get(provider, account) {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!("stored tokens unreadable: {e}");
            None
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
    pub op: OpId,
    /// Where it was requested.
    pub surface: Surface,
    /// Whether SAFE_MODE was on (the operation was not one it blocks).
    pub safe_mode: bool,
    /// The safety level that admitted it, when levels are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<Allowance>,
    /// The token situation.
    pub token: TokenStatus,
    /// Notes for the user (an optional token missing, a provider not
    /// compiled in).
    pub notes: Vec<String>,
}

/// Applies the policy table. Holds the environment to read SAFE_MODE and
/// `KASTELL_SAFETY_LEVEL` from, the directory whose `safety.json` holds the
/// levels (both read on every check) and the security log refusals go to.
#[derive(Debug, Clone)]
pub struct Policy {
    env: Env,
    log: Option<SecurityLog>,
    dir: Option<PathBuf>,
}

impl Policy {
    /// A policy reading `env` and logging refusals to `log` (`None`: not
    /// logged, for callers with no kastell directory), with no
    /// `safety.json` (only `KASTELL_SAFETY_LEVEL` sets a level).
    pub fn new(env: Env, log: Option<SecurityLog>) -> Self {
        Self {
            env,
            log,
            dir: None,
        }
    }

    /// A policy reading `env` and `dir/safety.json`, logging to
    /// `security.log` in `dir`.
    pub fn for_dir(env: Env, dir: &Path) -> Self {
        Self {
            env,
            log: Some(SecurityLog::in_dir(dir)),
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The same policy without its log: for questions ("would this be
    /// allowed?"), which are not requests and leave no trace.
    pub fn quiet(&self) -> Self {
        Self {
            log: None,
            ..self.clone()
        }
    }

    /// The environment this policy reads.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// The safety levels in force now (read afresh on every call).
    pub fn safety(&self) -> Result<SafetyConfig> {
        SafetyConfig::load(&self.env, self.dir.as_deref())
    }

    /// SAFE_MODE for `surface` now: the variable's value when set; when
    /// neither variable is set, off if safety levels are configured (they
    /// govern instead), else the surface's default. Warnings go to stderr.
    fn safe_mode_reading(&self, surface: Surface) -> SafeModeReading {
        self.safe_mode_beside(surface, &self.safety())
    }

    /// [`Self::safe_mode_reading`] with the safety configuration already
    /// read.
    fn safe_mode_beside(&self, surface: Surface, safety: &Result<SafetyConfig>) -> SafeModeReading {
        let mut reading = safe_mode(&self.env, surface);
        if reading.defaulted && safety.as_ref().is_ok_and(|s| s.configured()) {
            reading.on = false;
            reading.source = "unset; safety levels configured".to_owned();
        }
        reading
    }

    /// Whether SAFE_MODE is on for `surface` right now (warnings go to
    /// stderr).
    pub fn safe_mode(&self, surface: Surface) -> bool {
        self.safe_mode_reading(surface).on
    }

    /// Whether `provider`'s token (default account) is there: its
    /// variable set (and not blank) in this policy's environment, or one
    /// stored with `kastell auth set` in this policy's directory.
    pub fn env_token_present(&self, provider: &str) -> bool {
        find_token(&self.env, self.dir.as_deref(), provider, None).is_some()
    }

    /// SAFE_MODE alone, decided before the server is looked up (an
    /// unreadable safety configuration refuses all but reads first, with
    /// its own error); a refusal
    /// is logged naming `named`, the server the call asked for, when it is
    /// known (so `security.log` says which server an agent went for).
    pub fn check_safe_mode(
        &self,
        op: OpId,
        surface: Surface,
        named: Option<&ServerRecord>,
    ) -> Result<()> {
        let rule = op.rule();
        let safety = match self.safety() {
            Err(e) if !rule.reads_only() => {
                return Err(self.refuse(rule, surface, named, UNREADABLE, e));
            }
            read => read,
        };
        let reading = self.safe_mode_beside(surface, &safety);
        if let (true, Some(block)) = (reading.on, rule.safe_mode) {
            let err = Error::new(ErrorKind::PermissionDenied, block.error).with_hint(block.hint);
            return Err(self.refuse(rule, surface, named, &reading.source, err));
        }
        Ok(())
    }

    /// Decides whether `op` may run on `server` from `surface`.
    ///
    /// Checks, in this order, stopping at the first refusal:
    /// 1. an unreadable `safety.json` or bad `KASTELL_SAFETY_LEVEL`
    ///    refuses all but reads, with its own error (the file, line and
    ///    column), whatever SAFE_MODE says;
    /// 2. SAFE_MODE (`PermissionDenied`, the table's message and hint);
    ///    with neither variable set and safety levels configured, it is
    ///    off and the levels decide;
    /// 3. the safety level and maintenance windows, when configured
    ///    (`PermissionDenied` naming the level and where it came from);
    /// 4. manual servers, for operations that need a provider id
    ///    (`InvalidState`);
    /// 5. the token, via `token_present(provider)`, for cloud servers when
    ///    the table says it is required (`Unauthenticated`: `No API token
    ///    found for <provider>` / `Set <ENV> environment variable`); a cloud
    ///    server with no provider at all is refused (`InvalidState`);
    /// 6. the platform, when the table needs one: `bare` counts, an
    ///    unknown platform is refused (`InvalidState`).
    ///
    /// Server checks (4-6) apply only when `server` is given. Every refusal
    /// is appended to `security.log`; a failure to write the log is
    /// reported on stderr and never replaces the refusal.
    pub fn check(
        &self,
        op: OpId,
        surface: Surface,
        server: Option<&ServerRecord>,
        token_present: impl Fn(&str) -> bool,
    ) -> Result<Decision> {
        let rule = op.rule();
        // Read once: SAFE_MODE's default and the levels both depend on it.
        let safety = self.safety();
        let reading = self.safe_mode_beside(surface, &safety);
        let refuse = |err: Error, reason: &str| self.refuse(rule, surface, server, reason, err);
        // An unreadable configuration is refused with its own error, not
        // with SAFE_MODE's (whose hint, to turn it off, would not help).
        let safety = match safety {
            Ok(config) => config,
            Err(e) if rule.reads_only() => {
                tracing::warn!("{e}; reads go on, everything else is refused");
                SafetyConfig::default()
            }
            Err(e) => return Err(refuse(e, UNREADABLE)),
        };
        if let (true, Some(block)) = (reading.on, rule.safe_mode) {
            let err = Error::new(ErrorKind::PermissionDenied, block.error).with_hint(block.hint);
            return Err(refuse(err, &reading.source));
        }
        let allowance = safety
            .configured()
            .then(|| safety.allowance(surface, server));
        if let Some(allowance) = &allowance {
            allowance
                .admit(
                    rule.id,
                    rule.category,
                    server.map(|s| s.name.as_str()),
                    chrono::Utc::now(),
                )
                .map_err(|e| refuse(e, &format!("safety level {}", allowance.level)))?;
        }
        let mut decision = Decision {
            op,
            surface,
            safe_mode: reading.on,
            safety: allowance,
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
                rule,
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
