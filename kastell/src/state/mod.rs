//! State: the files kastell keeps in its directory (`KASTELL_DIR`, else
//! `~/.kastell`), each owned by one module that alone reads and writes it,
//! atomically and with its own lock where two processes may meet.
//!
//! | file | module |
//! |---|---|
//! | `servers.json` (the fleet) | [`store`] |
//! | `audit.jsonl`, its head and anchor | [`audit`] |
//! | `approvals.json`, `declines.json` | `approval` |
//! | `security.log` (refusals) | `security_log` |
//! | `verifications.json` (proofs that backups restore) | `verifications` |
//! | `tokens.json` (provider tokens `auth set` stored) | [`tokens`] |
//! | `checks.json` (declared health checks, rollback policy) | [`checks`] |
//! | `backups/<server>/.lock` (one operation per server) | `hostlock` |
//! | `rollouts/<id>.json`, `.lock`, `.abort` (fleet rollouts) | [`rollouts`] |
//! | `tasks/<id>.json`, `.lock` (kastell-mcp's tasks) | `tasks` |
//! | where the directory is | `paths` |
//!
//! `safety.json` is the policy's ([`crate::policy`]), `repositories.json`
//! the repositories' ([`crate::engine`]); the backups themselves are the
//! backup engine's.

pub(crate) mod approval;
pub mod audit;
pub mod checks;
pub(crate) mod hostlock;
pub mod keychain;
pub(crate) mod lockfile;
pub(crate) mod paths;
pub mod platform_health;
pub mod rollouts;
pub(crate) mod security_log;
pub mod store;
pub(crate) mod tasks;
pub mod tokens;
pub(crate) mod verifications;

pub use hostlock::HostLock;
