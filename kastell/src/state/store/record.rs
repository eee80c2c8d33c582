//! One entry of `servers.json`, read-compatible with the original tool.

use kastell_core::Registry;
use kastell_core::registry::{FIRST_PARTY_PLATFORMS, FIRST_PARTY_PROVIDERS};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `mode` value the original writes for servers without a platform.
pub const MODE_BARE: &str = "bare";
/// The `mode` value assumed when a record has none.
pub const MODE_COOLIFY: &str = "coolify";
/// The platform id used for servers that run no platform.
pub const PLATFORM_BARE: &str = "bare";

/// The original tool's one platform rule: a server that runs no platform
/// (`bare`) is stored as a mode, not a platform. The `platform` field to
/// write for `id`: `None` for `bare`, else `id`. Records and backup
/// manifests both follow it.
pub fn stored_platform(id: &str) -> Option<&str> {
    (id != PLATFORM_BARE).then_some(id)
}

fn default_mode() -> String {
    MODE_COOLIFY.to_owned()
}

fn default_unknown() -> String {
    "unknown".to_owned()
}

/// How kastell reaches a server over SSH (a kastell extension; the original
/// always used `root`, port 22 and the default key).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SshSettings {
    /// Login user; `None` means `root`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// TCP port; `None` means 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key file; `None` means the default keys (`~/.ssh/id_ed25519`,
    /// then `~/.ssh/id_rsa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    /// The pinned host key fingerprint (`SHA256:...`); `None` until the
    /// first connection pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
}

impl SshSettings {
    /// Whether no field is set (then the whole `ssh` object is omitted).
    pub fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.port.is_none()
            && self.identity_file.is_none()
            && self.host_key.is_none()
    }
}

/// One server in the fleet, as stored in `servers.json`.
///
/// Field names and defaults follow the original tool: `provider` may be
/// missing, `mode` defaults to `"coolify"`, `region`/`size` default to
/// `"unknown"`. kastell's own fields (`ssh`, `backupPaths`) are omitted
/// when unset, and any field kastell does not know is kept in
/// [`ServerRecord::extra`] and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerRecord {
    /// The provider's server id, or `manual-<epoch-ms>` for servers with no
    /// provider id.
    pub id: String,
    /// The server's unique name in the fleet.
    pub name: String,
    /// Cloud provider id (`hetzner`, `digitalocean`, `vultr`, `linode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Public IPv4 address, or a provisioning sentinel (`""`, `pending`,
    /// `0.0.0.0`).
    pub ip: String,
    /// Region slug, `unknown` for manually added servers.
    #[serde(default = "default_unknown")]
    pub region: String,
    /// Plan or size slug, `unknown` for manually added servers.
    #[serde(default = "default_unknown")]
    pub size: String,
    /// When the record was created (ISO-8601).
    #[serde(default)]
    pub created_at: String,
    /// Deprecated mode (`coolify`, `dokploy` or `bare`); defaults to
    /// `coolify` when missing, as in the original.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// The platform (`coolify`, `dokploy`, ...); see
    /// [`ServerRecord::resolve_platform`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Domain used for HTTPS health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// SSH connection settings (kastell extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshSettings>,
    /// Paths to back up on bare servers (kastell extension); empty means
    /// the platform's default set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_paths: Vec<String>,
    /// Labels (`prod`, `staging`) that safety levels and windows in
    /// `safety.json` can name (kastell extension).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The provider account whose token reaches it (`kastell auth set
    /// --account`); `None` for the default account (kastell extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Every field kastell does not know, preserved on rewrite.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ServerRecord {
    /// A record with the given identity and defaults everywhere else
    /// (`region`/`size` `unknown`, `mode` `coolify`, no platform).
    pub fn new(id: impl Into<String>, name: impl Into<String>, ip: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            provider: None,
            ip: ip.into(),
            region: default_unknown(),
            size: default_unknown(),
            created_at: String::new(),
            mode: default_mode(),
            platform: None,
            domain: None,
            ssh: None,
            backup_paths: Vec::new(),
            tags: Vec::new(),
            account: None,
            extra: Map::new(),
        }
    }

    /// The original's `resolvePlatform`: `platform` if set (and not empty);
    /// otherwise `None` (a bare server) when `mode` is `bare`; otherwise
    /// `coolify`.
    pub fn resolve_platform(&self) -> Option<&str> {
        match self.platform.as_deref() {
            Some(p) if !p.is_empty() => Some(p),
            _ if self.mode == MODE_BARE => None,
            _ => Some(MODE_COOLIFY),
        }
    }

    /// Records that the server runs platform `id`, in the form the original
    /// tool reads: `bare` as `mode: "bare"` with no `platform`, any other
    /// id as `platform: id` with the default mode. Validating `id` is the
    /// caller's job.
    pub fn set_platform(&mut self, id: &str) {
        match stored_platform(id) {
            None => {
                self.mode = MODE_BARE.to_owned();
                self.platform = None;
            }
            Some(id) => {
                self.mode = MODE_COOLIFY.to_owned();
                self.platform = Some(id.to_owned());
            }
        }
    }

    /// The platform id to build an adapter for: [`Self::resolve_platform`],
    /// with bare servers reported as `bare`.
    pub fn platform_id(&self) -> &str {
        self.resolve_platform().unwrap_or(PLATFORM_BARE)
    }

    /// Whether the server runs no platform (`resolve_platform` is `None`,
    /// or the platform is literally `bare`).
    pub fn is_bare(&self) -> bool {
        self.platform_id() == PLATFORM_BARE
    }

    /// Whether the server was added by hand and has no provider id
    /// (its `id` starts with `manual-`).
    pub fn is_manual(&self) -> bool {
        self.id.starts_with("manual-")
    }

    /// The provider id when it is set and not empty.
    pub fn provider_id(&self) -> Option<&str> {
        self.provider.as_deref().filter(|p| !p.is_empty())
    }

    /// The provider named in the record when this build cannot handle it
    /// (see [`is_known_provider`]); `None` when the record has no provider
    /// or a known one.
    pub fn unknown_provider(&self) -> Option<&str> {
        self.provider_id().filter(|p| !is_known_provider(p))
    }

    /// The pinned host key fingerprint, if any.
    pub fn host_key(&self) -> Option<&str> {
        self.ssh.as_ref().and_then(|s| s.host_key.as_deref())
    }
}

/// Whether `provider` is a provider kastell knows: one of the first-party
/// ids (whether or not compiled in) or one registered in this build.
pub fn is_known_provider(provider: &str) -> bool {
    FIRST_PARTY_PROVIDERS.contains(&provider) || Registry::global().has_provider(provider)
}

/// Whether `platform` is a platform kastell knows: one of the first-party
/// ids (whether or not compiled in) or one registered in this build.
pub fn is_known_platform(platform: &str) -> bool {
    FIRST_PARTY_PLATFORMS.contains(&platform) || Registry::global().has_platform(platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ServerRecord {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn original_example_record_reads_with_its_meaning() {
        let rec = parse(
            r#"{"id":"manual-1742050000000","name":"web-1","provider":"hetzner","ip":"203.0.113.10","region":"unknown","size":"unknown","createdAt":"2026-03-15T12:00:00.000Z","mode":"coolify","platform":"dokploy"}"#,
        );
        assert!(rec.is_manual());
        assert_eq!(rec.resolve_platform(), Some("dokploy"));
        assert_eq!(rec.provider_id(), Some("hetzner"));
        assert_eq!(rec.unknown_provider(), None);
        assert!(rec.extra.is_empty());
        assert!(rec.ssh.is_none());
    }

    #[test]
    fn platform_resolution_follows_section_2_4() {
        let mut rec = parse(r#"{"id":"1","name":"abc","ip":"203.0.113.1"}"#);
        assert_eq!(rec.mode, "coolify");
        assert_eq!(rec.resolve_platform(), Some("coolify"));
        rec.mode = "bare".into();
        assert_eq!(rec.resolve_platform(), None);
        assert!(rec.is_bare());
        assert_eq!(rec.platform_id(), "bare");
        rec.platform = Some("dokploy".into());
        assert_eq!(rec.resolve_platform(), Some("dokploy"));
        rec.platform = Some(String::new());
        assert_eq!(rec.resolve_platform(), None);
        rec.mode = "dokploy".into();
        assert_eq!(rec.resolve_platform(), Some("coolify"));
    }

    #[test]
    fn kastell_extensions_are_omitted_when_unset() {
        let rec = ServerRecord::new("manual-1", "web-1", "203.0.113.1");
        let json = serde_json::to_value(&rec).unwrap();
        let obj = json.as_object().unwrap();
        for absent in ["ssh", "backupPaths", "platform", "domain", "provider"] {
            assert!(!obj.contains_key(absent), "{absent}");
        }
        assert_eq!(obj["mode"], "coolify");
        assert_eq!(obj["region"], "unknown");
    }

    #[test]
    fn a_platform_is_stored_as_the_original_reads_it() {
        let mut rec = ServerRecord::new("manual-1", "web-1", "203.0.113.1");
        rec.set_platform("dokploy");
        assert_eq!(
            (rec.mode.as_str(), rec.platform.as_deref()),
            ("coolify", Some("dokploy"))
        );
        assert_eq!(rec.platform_id(), "dokploy");
        rec.set_platform("bare");
        assert_eq!((rec.mode.as_str(), rec.platform.as_deref()), ("bare", None));
        assert!(rec.is_bare());
        rec.set_platform("cronhost");
        assert_eq!(rec.platform_id(), "cronhost");
        assert_eq!(rec.mode, "coolify");
    }

    #[test]
    fn unknown_providers_are_flagged_not_hidden() {
        let rec = parse(r#"{"id":"9","name":"abc","ip":"203.0.113.1","provider":"acme"}"#);
        assert_eq!(rec.unknown_provider(), Some("acme"));
        assert!(is_known_provider("vultr"));
        assert!(is_known_platform("bare"));
        assert!(!is_known_platform("plesk"));
    }
}
