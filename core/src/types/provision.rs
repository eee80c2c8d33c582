//! Creating and deleting servers: what to ask a provider for, how kastell
//! marks what it created, and what a server costs.
//!
//! Every server (and every resource made for it, such as an uploaded SSH
//! key) that kastell creates carries its marker ([`MANAGED_TAG`] and the
//! [`ManagedRole`]'s tag), so a later run or `kastell doctor` can find what
//! an interrupted run left behind, and so deleting never reaches a server a
//! person made.

use serde::{Deserialize, Serialize};

use super::server::Server;

/// The tag (Hetzner: label key with value `true`) on everything kastell
/// creates at a provider.
pub const MANAGED_TAG: &str = "kastell-managed";

/// Why kastell created a server; carried as a second tag
/// ([`ManagedRole::tag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedRole {
    /// A server that replaces a lost one (`kastell recover`); kept.
    Recovery,
    /// A throwaway server for a rehearsal (`kastell drill --scratch`);
    /// deleted when the rehearsal ends, and by the next run or
    /// `kastell doctor` when it could not be.
    Drill,
}

impl ManagedRole {
    /// The role's tag (Hetzner: label `kastell-role=<as_str>`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::Recovery => "kastell-recovery",
            Self::Drill => "kastell-drill",
        }
    }

    /// The role as a word: `recovery` or `drill`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recovery => "recovery",
            Self::Drill => "drill",
        }
    }

    /// The role a tag (or Hetzner label value) names, if any.
    pub fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "kastell-recovery" | "recovery" => Some(Self::Recovery),
            "kastell-drill" | "drill" => Some(Self::Drill),
            _ => None,
        }
    }
}

/// What to create: every field is the provider's own slug.
///
/// A provider refuses (before any request) an empty field and a public key
/// that is not one OpenSSH public key line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// The new server's name (also its hostname where the provider sets one).
    pub name: String,
    /// Plan, size or server type (`cx22`, `s-1vcpu-1gb`, `vc2-1c-1gb`,
    /// `g6-nanode-1`).
    pub size: String,
    /// Region or location (`fsn1`, `fra1`, `fra`, `eu-central`).
    pub region: String,
    /// Image or distribution (`ubuntu-24.04`, `ubuntu-24-04-x64`, ...).
    pub image: String,
    /// One OpenSSH public key line that root's `authorized_keys` gets.
    pub ssh_public_key: String,
    /// Why kastell creates it; becomes the role tag beside [`MANAGED_TAG`].
    pub role: ManagedRole,
}

/// The size, region and image a provider suggests when the user names
/// only the provider (`kastell recover web --to hetzner`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerChoice {
    /// The default plan (the smallest that runs a PaaS: 2 GB of memory).
    pub size: String,
    /// The default region.
    pub region: String,
    /// The default image (an Ubuntu LTS).
    pub image: String,
}

/// A server kastell created, as the provider lists it, with the role its
/// tags say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedServer {
    /// The server.
    pub server: Server,
    /// Its role tag, when it has one.
    pub role: Option<ManagedRole>,
}

/// What a server of some size costs while it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPrice {
    /// Per month.
    pub monthly: f64,
    /// Per hour, where the provider bills by the hour.
    pub hourly: Option<f64>,
    /// Currency symbol or code (`€`, `$`).
    pub currency: String,
    /// Where the price came from (`pricing endpoint`, `documented rate`).
    pub basis: String,
}

impl std::fmt::Display for ServerPrice {
    /// `€4.51/mo (€0.0072/h)`, or `$6.00/mo`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:.2}/mo", self.currency, self.monthly)?;
        if let Some(hourly) = self.hourly {
            write!(f, " ({}{:.4}/h)", self.currency, hourly)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_tags() {
        for role in [ManagedRole::Recovery, ManagedRole::Drill] {
            assert_eq!(ManagedRole::from_tag(role.tag()), Some(role));
            assert_eq!(ManagedRole::from_tag(role.as_str()), Some(role));
        }
        assert_eq!(ManagedRole::from_tag("web"), None);
    }

    #[test]
    fn a_price_shows_month_and_hour() {
        let price = ServerPrice {
            monthly: 4.51,
            hourly: Some(0.0072),
            currency: "€".into(),
            basis: "pricing endpoint".into(),
        };
        assert_eq!(price.to_string(), "€4.51/mo (€0.0072/h)");
    }
}
