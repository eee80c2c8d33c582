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
use crate::error::{Error, Result};

/// The tag (Hetzner: label key with value `true`) on everything kastell
/// creates at a provider.
pub const MANAGED_TAG: &str = "kastell-managed";

/// The start of the tag (Hetzner: the label key, without the colon) that
/// names the SSH key kastell uploaded for a server, so deleting the server
/// deletes that key too: `kastell-ssh-key:<key id>`.
pub const SSH_KEY_TAG: &str = "kastell-ssh-key:";

/// The start of the name of every SSH key kastell uploads
/// (`kastell-managed-<role>-<server name>-<epoch-ms>`, see
/// [`ServerSpec::key_name`]): the marker of a key where the provider has no
/// labels or tags for keys (DigitalOcean, Vultr).
pub const MANAGED_KEY_PREFIX: &str = "kastell-managed-";

/// Whether an SSH key named `name` carries kastell's name marker
/// ([`MANAGED_KEY_PREFIX`] followed by something).
pub fn is_managed_key_name(name: &str) -> bool {
    name.strip_prefix(MANAGED_KEY_PREFIX)
        .is_some_and(|rest| !rest.is_empty())
}

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

    /// The first role any of `tags` names, if any.
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        tags.into_iter().find_map(Self::from_tag)
    }
}

/// The SSH key id a server's tags name (see [`SSH_KEY_TAG`]), if any.
pub fn ssh_key_from_tags<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    tags.into_iter()
        .find_map(|tag| tag.strip_prefix(SSH_KEY_TAG))
        .filter(|id| !id.is_empty())
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

/// The key types an OpenSSH public key line may start with.
const KEY_TYPES: [&str; 8] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

impl ServerSpec {
    /// The tags every provider puts on what it creates for this spec:
    /// [`MANAGED_TAG`] and the role's.
    pub fn tags(&self) -> [&'static str; 2] {
        [MANAGED_TAG, self.role.tag()]
    }

    /// The name of the SSH key uploaded for this spec:
    /// `kastell-managed-<role>-<name>-<epoch-ms>` (unique per upload, and
    /// kastell's marker where keys carry no labels).
    pub fn key_name(&self) -> String {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!(
            "{MANAGED_KEY_PREFIX}{}-{}-{stamp}",
            self.role.as_str(),
            self.name
        )
    }

    /// Refuses (`InvalidInput`, naming the field, before any request) an
    /// empty size, region or image, a name that is not a hostname (1 to 63
    /// letters, digits, `-` and `.`, not starting or ending with `-` or
    /// `.`), and a public key that is not one OpenSSH public key line
    /// (`<type> <base64> [comment]`).
    pub fn validate(&self, provider: &'static str) -> Result<()> {
        let refuse = |what: String, hint: &str| {
            Err(Error::invalid_input(what)
                .with_provider(provider)
                .with_hint(hint.to_owned()))
        };
        for (field, value) in [
            ("size", &self.size),
            ("region", &self.region),
            ("image", &self.image),
        ] {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return refuse(
                    format!("a new server needs a {field}"),
                    "Name the provider's own slug (see `kastell recover --help`)",
                );
            }
        }
        let name = self.name.as_str();
        let name_ok = (1..=63).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            && !name.starts_with(['-', '.'])
            && !name.ends_with(['-', '.']);
        if !name_ok {
            return refuse(
                format!("{name:?} is not a usable server name"),
                "Use 1 to 63 letters, digits, `-` and `.` (a hostname)",
            );
        }
        if !is_public_key_line(&self.ssh_public_key) {
            return refuse(
                "the SSH public key is not one OpenSSH public key line".to_owned(),
                "Give the contents of a `.pub` file: `ssh-ed25519 AAAA... comment`",
            );
        }
        Ok(())
    }
}

/// Whether `line` is one OpenSSH public key line: a known key type, base64
/// key data, an optional comment, no line breaks or control characters.
fn is_public_key_line(line: &str) -> bool {
    let line = line.trim_end_matches('\n');
    if line.chars().any(char::is_control) {
        return false;
    }
    let mut parts = line.split(' ');
    let (Some(kind), Some(data)) = (parts.next(), parts.next()) else {
        return false;
    };
    KEY_TYPES.contains(&kind)
        && data.len() >= 16
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
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
    /// The id of the SSH key kastell uploaded for it, as its tag (Hetzner:
    /// label) names it; `None` where nothing was uploaded (Linode takes the
    /// key inline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
}

/// An SSH key kastell uploaded to create a server, as the provider lists
/// it: it carries kastell's marker (Hetzner: label `kastell-managed=true`;
/// DigitalOcean and Vultr, whose keys have no tags: a name starting with
/// [`MANAGED_KEY_PREFIX`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedSshKey {
    /// The provider's id of the key.
    pub id: String,
    /// The key's name at the provider (shown escaped: it is the
    /// provider's text).
    pub name: String,
    /// When it was uploaded (ISO-8601), where the provider says.
    pub created_at: Option<String>,
    /// The fingerprint of the public key the provider holds under it
    /// ([`ssh_key_fingerprint`]); `None` when the provider did not show a
    /// key kastell could read. A create whose key upload the provider
    /// refuses as a duplicate reuses the marked key with its public key's
    /// fingerprint, and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// The SHA-256 fingerprint of an OpenSSH public key line (`TYPE BASE64
/// [COMMENT]`), as `ssh-keygen -l` prints it: `SHA256:` and the unpadded
/// base64 of the digest of the decoded key blob. The comment does not
/// count, so two lines of the same key match. `None` for a line that is
/// not a public key (no type, or a blob that is not base64 naming that
/// type).
pub fn ssh_key_fingerprint(line: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
    let mut fields = line.split_whitespace();
    let kind = fields.next()?;
    let blob = fields.next()?;
    let decoder = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = decoder.decode(blob).ok()?;
    // The blob opens with its own type: a length (4 bytes) and the name.
    let named = bytes
        .get(4..4 + kind.len())
        .is_some_and(|name| name == kind.as_bytes());
    let length = bytes
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]));
    if !named || length != u32::try_from(kind.len()).ok() {
        return None;
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    Some(format!("SHA256:{}", STANDARD_NO_PAD.encode(digest)))
}

/// The keys of `keys` that none of `servers` names as its SSH key: what an
/// ambiguous create that made no server, or a server deleted outside
/// kastell, left behind. Keys and servers must come from the same account.
pub fn orphan_keys(keys: Vec<ManagedSshKey>, servers: &[ManagedServer]) -> Vec<ManagedSshKey> {
    keys.into_iter()
        .filter(|key| {
            !servers
                .iter()
                .any(|s| s.ssh_key.as_deref() == Some(key.id.as_str()))
        })
        .collect()
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

    fn spec() -> ServerSpec {
        ServerSpec {
            name: "web-new".into(),
            size: "s".into(),
            region: "r".into(),
            image: "i".into(),
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 me@host".into(),
            role: ManagedRole::Drill,
        }
    }

    #[test]
    fn specs_are_checked_before_any_request() {
        assert!(spec().validate("p").is_ok());
        assert_eq!(spec().tags(), ["kastell-managed", "kastell-drill"]);
        let bad = [
            ServerSpec {
                size: " ".into(),
                ..spec()
            },
            ServerSpec {
                name: "-x".into(),
                ..spec()
            },
            ServerSpec {
                name: "a b".into(),
                ..spec()
            },
            ServerSpec {
                ssh_public_key: "hello".into(),
                ..spec()
            },
            ServerSpec {
                ssh_public_key:
                    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\nssh-rsa AAAAB3NzaC1yc2EAAAADAQAB".into(),
                ..spec()
            },
        ];
        for spec in bad {
            let err = spec.validate("p").unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{spec:?}");
            assert!(err.hint().is_some());
        }
        assert_eq!(ssh_key_from_tags(["a", "kastell-ssh-key:77"]), Some("77"));
        assert_eq!(ssh_key_from_tags(["kastell-ssh-key:"]), None);
        assert_eq!(
            ManagedRole::from_tags(["x", "kastell-recovery"]),
            Some(ManagedRole::Recovery)
        );
    }

    #[test]
    fn keys_no_server_names_are_orphans() {
        let key = |id: &str| ManagedSshKey {
            id: id.into(),
            name: format!("kastell-managed-drill-web-{id}"),
            created_at: None,
            fingerprint: None,
        };
        let server = |key: Option<&str>| ManagedServer {
            server: Server::new(
                crate::types::ServerId::new("9").unwrap(),
                "web",
                crate::types::ServerStatus::Running,
            ),
            role: Some(ManagedRole::Drill),
            ssh_key: key.map(str::to_owned),
        };
        let orphans = orphan_keys(
            vec![key("1"), key("2"), key("3")],
            &[server(Some("2")), server(None)],
        );
        let ids: Vec<&str> = orphans.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert!(orphan_keys(vec![key("1")], &[server(Some("1"))]).is_empty());

        assert!(is_managed_key_name("kastell-managed-drill-web-17"));
        assert!(!is_managed_key_name("kastell-managed-"));
        assert!(!is_managed_key_name("laptop"));
        assert!(!is_managed_key_name("my-kastell-managed-x"));
        let name = spec().key_name();
        assert!(name.starts_with("kastell-managed-drill-web-new-"), "{name}");
        assert!(is_managed_key_name(&name));
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
