//! Provider snapshots (whole-disk images) and what they cost.

use serde::{Deserialize, Serialize};

use super::ids::{ServerId, SnapshotId};

/// A snapshot's lifecycle state, normalised across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    /// Still being taken.
    Creating,
    /// Complete and usable.
    Available,
    /// Being deleted.
    Deleting,
    /// The provider reports it failed.
    Failed,
    /// Anything else.
    Unknown,
}

/// A snapshot of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The provider's id.
    pub id: SnapshotId,
    /// The server it was taken from, when known.
    pub server_id: Option<ServerId>,
    /// Name or description.
    pub name: String,
    /// Normalised status.
    pub status: SnapshotStatus,
    /// The provider's own status word.
    pub raw_status: String,
    /// Size in GB once known.
    pub size_gb: Option<f64>,
    /// Creation time (ISO-8601).
    pub created_at: Option<String>,
    /// Whether it carries kastell's marker, where the provider marks
    /// snapshots (every snapshot kastell takes gets it: Hetzner the image
    /// label `managed-by=kastell`, Linode and DigitalOcean the image tag
    /// `kastell-managed`): `Some(true)` marked, `Some(false)` not
    /// kastell's; `None` where the provider keeps no marker on snapshots
    /// (Vultr, whose snapshots have a description and no tags), and
    /// kastell's are told by their name alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
}

/// A monthly cost estimate for keeping a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostEstimate {
    /// Estimated cost per month.
    pub monthly: f64,
    /// Currency symbol or code (`€`, `$`).
    pub currency: String,
    /// The size the estimate is based on.
    pub size_gb: f64,
    /// Where the price came from (`pricing endpoint`, `documented rate`).
    pub basis: String,
}

impl std::fmt::Display for CostEstimate {
    /// Formats as the original tool did: `€0.24/mo`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{:.2}/mo", self.currency, self.monthly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_formats_like_the_original() {
        let cost = CostEstimate {
            monthly: 0.2395,
            currency: "€".into(),
            size_gb: 40.0,
            basis: "documented rate".into(),
        };
        assert_eq!(cost.to_string(), "€0.24/mo");
    }
}
