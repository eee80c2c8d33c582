//! `kastell doctor --check-tokens`: every provider token kastell can use
//! (each provider's variable, and every account `kastell auth set`
//! stored) asked of its provider's API with `validate_token`: valid,
//! read-only, or refused. The tokens themselves are never shown.

use kastell_core::{ErrorKind, Registry};
use serde::Serialize;

use crate::ops;
use crate::policy::TokenEnv;
use crate::state::tokens::{DEFAULT_ACCOUNT, TokenStore};

/// One token's answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenCheck {
    /// The provider id.
    pub provider: String,
    /// The account (`default` for the provider's own variable).
    pub account: String,
    /// Where the token came from: `env:<VAR>` or `stored`.
    pub source: String,
    /// `valid`, `read-only`, `refused` or `error`.
    pub status: &'static str,
    /// What the API said, for anything but a plain `valid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TokenCheck {
    /// Whether the token needs attention (refused, or the check failed).
    pub(crate) fn failed(&self) -> bool {
        matches!(self.status, "refused" | "error")
    }
}

/// Checks every token `octx` can find, by provider id then account
/// (environment first, as operations look them up). Never fails: an
/// unreadable stored-tokens file or an unreachable API is reported in the
/// list.
pub(crate) async fn check_tokens(octx: &ops::Context) -> Vec<TokenCheck> {
    let stored = TokenStore::for_env(octx.store.dir(), &octx.env)
        .list()
        .unwrap_or_default();
    let mut checks = Vec::new();
    for id in Registry::global().provider_ids() {
        let mut accounts: Vec<String> = stored
            .iter()
            .filter(|t| t.provider == id)
            .map(|t| t.account.clone())
            .collect();
        // The default account's token may be in the variable, or in the
        // keychain under the original tool's keys (which no listing names).
        if octx.token(id).is_some() && !accounts.iter().any(|a| a == DEFAULT_ACCOUNT) {
            accounts.insert(0, DEFAULT_ACCOUNT.to_owned());
        }
        for account in accounts {
            let named = (account != DEFAULT_ACCOUNT).then_some(account.as_str());
            let var = TokenEnv::for_account(id, named).var;
            let source = if octx.env.get_nonempty(&var).is_some() {
                format!("env:{var}")
            } else {
                "stored".to_owned()
            };
            let answer = match octx.provider_by_id(id, named) {
                Ok(provider) => provider.validate_token().await,
                Err(e) => Err(e),
            };
            let (status, detail) = match answer {
                Ok(info) if info.can_write == Some(false) => ("read-only", None),
                Ok(info) if info.can_write.is_none() => (
                    "valid",
                    Some("the API does not say whether it may write".to_owned()),
                ),
                Ok(_) => ("valid", None),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
                    ) =>
                {
                    ("refused", Some(e.to_string()))
                }
                Err(e) => ("error", Some(e.to_string())),
            };
            checks.push(TokenCheck {
                provider: id.to_owned(),
                account,
                source,
                status,
                detail,
            });
        }
    }
    checks
}
