//! The shapes of server creation: the uploaded SSH key, the create answer
//! and the server types' prices in `GET /pricing`.

use kastell_core::types::{MANAGED_TAG, ManagedRole, ManagedSshKey, ssh_key_fingerprint};
use kastell_core::{Error, Result};
use serde::Deserialize;

use super::HServer;
use crate::ID;

/// The label key naming the SSH key kastell uploaded for a server.
pub(crate) const SSH_KEY_LABEL: &str = "kastell-ssh-key";
/// The label key carrying the role.
pub(crate) const ROLE_LABEL: &str = "kastell-role";

/// `{"ssh_key": {...}}` (`POST /ssh_keys`).
#[derive(Debug, Deserialize)]
pub(crate) struct SshKeyEnvelope {
    pub(crate) ssh_key: SshKey,
}

/// An SSH key as Hetzner stores it.
#[derive(Debug, Deserialize)]
pub(crate) struct SshKey {
    pub(crate) id: i64,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) labels: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub(crate) created: Option<String>,
    #[serde(default)]
    pub(crate) public_key: Option<String>,
}

impl SshKey {
    /// Whether the key carries kastell's marker label.
    pub(crate) fn is_managed(&self) -> bool {
        self.labels.get(MANAGED_TAG).map(String::as_str) == Some("true")
    }

    /// The kastell view of a marked key.
    pub(crate) fn into_managed(self) -> ManagedSshKey {
        ManagedSshKey {
            id: self.id.to_string(),
            name: self.name,
            created_at: self.created,
            fingerprint: self.public_key.as_deref().and_then(ssh_key_fingerprint),
        }
    }
}

/// `{"ssh_keys": [...], "meta": {...}}` (`GET /ssh_keys`).
#[derive(Debug, Deserialize)]
pub(crate) struct SshKeyList {
    #[serde(default)]
    ssh_keys: Vec<SshKey>,
    #[serde(default)]
    meta: Option<super::Meta>,
}

impl super::Paged for SshKeyList {
    type Item = SshKey;
    fn into_page(self) -> (Vec<SshKey>, Option<u64>) {
        (self.ssh_keys, super::next_page(self.meta))
    }
}

/// The answer to `POST /servers`: the server (beside it Hetzner sends the
/// creating action, and a null root password as a key is given).
#[derive(Debug, Deserialize)]
pub(crate) struct CreateServerAnswer {
    pub(crate) server: HServer,
}

impl HServer {
    /// Whether the server carries kastell's marker label.
    pub(crate) fn is_managed(&self) -> bool {
        self.labels.get(MANAGED_TAG).map(String::as_str) == Some("true")
    }

    /// The role its `kastell-role` label names.
    pub(crate) fn role(&self) -> Option<ManagedRole> {
        self.labels
            .get(ROLE_LABEL)
            .and_then(|r| ManagedRole::from_tag(r))
    }

    /// The SSH key kastell uploaded for it, from its label.
    pub(crate) fn ssh_key(&self) -> Option<i64> {
        self.labels.get(SSH_KEY_LABEL)?.parse().ok()
    }
}

/// One server type in `pricing.server_types`.
#[derive(Debug, Deserialize)]
pub(crate) struct PricingServerType {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) prices: Vec<LocationPrice>,
}

/// A server type's price in one location.
#[derive(Debug, Deserialize)]
pub(crate) struct LocationPrice {
    pub(crate) location: String,
    pub(crate) price_hourly: super::Price,
    pub(crate) price_monthly: super::Price,
}

impl LocationPrice {
    /// Gross (VAT included) monthly and hourly prices as numbers.
    pub(crate) fn gross(&self) -> Result<(f64, f64)> {
        let number = |text: &str| match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(Error::unexpected(format!(
                "Hetzner's pricing has an unreadable server price {text:?}"
            ))
            .with_provider(ID)),
        };
        Ok((
            number(&self.price_monthly.gross)?,
            number(&self.price_hourly.gross)?,
        ))
    }
}
