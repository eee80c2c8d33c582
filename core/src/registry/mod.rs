//! Link-time registration of providers and platforms.
//!
//! A vendor crate declares one `const` [`ProviderEntry`] (or
//! [`PlatformEntry`]) and calls [`crate::register_provider!`] (or
//! [`crate::register_platform!`]) once. That submits the entry to
//! `inventory` and defines `pub fn register(&mut Registry)` for hosts where
//! link-time constructors do not run. Vendor crates need no `inventory`
//! dependency of their own.
//!
//! A crate that is only listed in `Cargo.toml` and never named in code is not
//! linked, and its entries silently vanish: the binary that wants a provider
//! must name it (`use kastell_hetzner as _;`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::capability::{CloudCapability, PlatformCapability};
use crate::cloud::CloudProvider;
use crate::detect::PlatformDetection;
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Platform;
use crate::poll::PollSchedule;
use crate::secret::Secret;
use crate::transport::Transport;
use crate::types::{BackupStyle, PlatformInfo, PlatformRoot, Privilege, ProviderInfo, UpdateStyle};

/// Provider ids that kastell itself ships, each behind a cargo feature of
/// the same name.
pub const FIRST_PARTY_PROVIDERS: &[&str] = &["digitalocean", "hetzner", "linode", "vultr"];

/// Platform ids that kastell itself ships, each behind a cargo feature of
/// the same name.
pub const FIRST_PARTY_PLATFORMS: &[&str] = &["bare", "coolify", "dokploy"];

/// What a provider constructor is given.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// The API token (never printed).
    pub token: Secret,
    /// An endpoint override (simulator, proxy); `None` means the vendor's.
    pub endpoint: Option<String>,
    /// Time allowed for one request; `None` means the provider's default.
    pub timeout: Option<std::time::Duration>,
    /// How failed requests are retried; `None` means the default policy.
    pub retry: Option<crate::RetryPolicy>,
    /// How often to poll actions; `None` means the provider's own timing
    /// (a simulator running faster than real time wants shorter polls).
    pub poll: Option<crate::PollSchedule>,
    /// Provider-specific options.
    pub options: BTreeMap<String, String>,
}

/// A cloud provider's registry entry.
#[derive(Debug)]
pub struct ProviderEntry {
    /// Unique id, lower case (`hetzner`).
    pub id: &'static str,
    /// Human name (`Hetzner Cloud`).
    pub display_name: &'static str,
    /// The environment variable holding the token (`HETZNER_TOKEN`).
    pub token_env: &'static str,
    /// What the provider supports.
    pub capability: CloudCapability,
    /// Builds a provider from its configuration.
    pub build: fn(ProviderConfig) -> Result<Arc<dyn CloudProvider>>,
}

impl ProviderEntry {
    /// The [`ProviderInfo`] of a provider built from this entry, talking
    /// to `endpoint`: what [`CloudProvider::info`] returns, without
    /// repeating the id and name.
    pub fn info(&self, endpoint: impl Into<String>) -> ProviderInfo {
        ProviderInfo {
            id: self.id,
            display_name: self.display_name,
            endpoint: endpoint.into(),
        }
    }

    /// The identity of a provider built from this entry, talking to
    /// `endpoint` and polling its actions on `poll`: what
    /// [`CloudProvider::identity`] returns.
    pub fn identity(
        &'static self,
        endpoint: impl Into<String>,
        poll: PollSchedule,
    ) -> ProviderIdentity {
        ProviderIdentity {
            entry: self,
            endpoint: endpoint.into(),
            poll,
        }
    }
}

/// Who a built provider is: its registry entry, the endpoint it talks to
/// and how often it polls actions. [`CloudProvider::info`],
/// [`CloudProvider::capability`] and [`CloudProvider::poll_schedule`]
/// answer from it, so a provider never repeats its entry.
#[derive(Debug, Clone)]
pub struct ProviderIdentity {
    /// The provider's registry entry.
    pub entry: &'static ProviderEntry,
    /// The API endpoint this instance talks to.
    pub endpoint: String,
    /// How often this instance polls actions.
    pub poll: PollSchedule,
}

impl ProviderIdentity {
    /// The id, name and endpoint, as [`CloudProvider::info`] reports them.
    pub fn info(&self) -> ProviderInfo {
        self.entry.info(self.endpoint.clone())
    }
}

/// The server a platform is built for.
#[derive(Debug, Clone, Default)]
pub struct PlatformTarget {
    /// The server's name in the fleet store.
    pub name: String,
    /// Its IP address.
    pub ip: String,
    /// Its domain, for HTTPS health checks.
    pub domain: Option<String>,
    /// Paths to back up (bare servers); empty means the platform's default.
    pub backup_paths: Vec<String>,
}

/// What a platform constructor is given.
#[derive(Debug, Clone)]
pub struct PlatformContext {
    /// The connection to the server.
    pub transport: Arc<dyn Transport>,
    /// Which server it is.
    pub target: PlatformTarget,
    /// The directory the platform treats as the server's `/` (the
    /// server's own by default; the sandbox's fake root there). A platform
    /// resolves every path it reads or writes under it.
    pub root: PlatformRoot,
    /// How its privileged commands get their rights.
    pub privilege: Privilege,
    /// Platform-specific options (timeouts, URLs), never `root` or `sudo`.
    pub options: BTreeMap<String, String>,
}

/// A platform's registry entry.
#[derive(Debug)]
pub struct PlatformEntry {
    /// Unique id, lower case (`coolify`).
    pub id: &'static str,
    /// Human name (`Coolify`).
    pub display_name: &'static str,
    /// What the platform supports.
    pub capability: PlatformCapability,
    /// How a maintenance names, describes and follows its update
    /// ([`UpdateStyle::OWN_COMMAND`] for a PaaS).
    pub update: UpdateStyle,
    /// What its backup holds, in the words plans and confirmations use
    /// ([`BackupStyle::DATABASE_AND_CONFIGURATION`] for a PaaS).
    pub backup: BackupStyle,
    /// How `server add` recognises it on a server over SSH (see
    /// [`crate::detect`]); `None` for a platform that is not detected
    /// (bare: what a server with no known platform's marker runs).
    pub detect: Option<PlatformDetection>,
    /// Builds a platform over a transport.
    pub build: fn(PlatformContext) -> Result<Arc<dyn Platform>>,
}

impl PlatformEntry {
    /// This entry, recognised on a server by `detection`.
    pub const fn detected_by(mut self, detection: PlatformDetection) -> Self {
        self.detect = Some(detection);
        self
    }

    /// The [`PlatformInfo`] of a platform built from this entry: what
    /// [`Platform::info`] returns, without repeating the id and name.
    pub const fn info(&self) -> PlatformInfo {
        PlatformInfo {
            id: self.id,
            display_name: self.display_name,
            update: self.update,
        }
    }
}

/// What the registry needs of an entry: its id, what it is called in
/// messages, and which ids kastell itself ships.
pub trait RegistryEntry: fmt::Debug + Send + Sync + 'static {
    /// `provider` or `platform`, in messages.
    const KIND: &'static str;
    /// The ids kastell ships behind cargo features of the same name.
    const FIRST_PARTY: &'static [&'static str];
    /// This entry's unique id.
    fn id(&self) -> &'static str;
}

impl RegistryEntry for ProviderEntry {
    const KIND: &'static str = "provider";
    const FIRST_PARTY: &'static [&'static str] = FIRST_PARTY_PROVIDERS;
    fn id(&self) -> &'static str {
        self.id
    }
}

impl RegistryEntry for PlatformEntry {
    const KIND: &'static str = "platform";
    const FIRST_PARTY: &'static [&'static str] = FIRST_PARTY_PLATFORMS;
    fn id(&self) -> &'static str {
        self.id
    }
}

/// An entry as submitted to `inventory`, with the submitting crate.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration<E: 'static> {
    pub entry: &'static E,
    pub crate_name: &'static str,
}

/// A provider entry as submitted to `inventory`.
#[doc(hidden)]
pub type ProviderRegistration = Registration<ProviderEntry>;
/// A platform entry as submitted to `inventory`.
#[doc(hidden)]
pub type PlatformRegistration = Registration<PlatformEntry>;

inventory::collect!(ProviderRegistration);
inventory::collect!(PlatformRegistration);

/// Registers a provider: `register_provider!(ENTRY);` in the vendor crate's
/// root, where `ENTRY` is a `const` or `static` [`ProviderEntry`].
///
/// Expands to an `inventory` submission and to
/// `pub fn register(registry: &mut Registry) -> Result<()>` for explicit
/// registration.
#[macro_export]
macro_rules! register_provider {
    ($entry:path) => {
        $crate::__register!($entry, add_provider, "provider");
    };
}

/// Registers a platform: `register_platform!(ENTRY);` in the vendor crate's
/// root. See [`register_provider!`].
#[macro_export]
macro_rules! register_platform {
    ($entry:path) => {
        $crate::__register!($entry, add_platform, "platform");
    };
}

/// Declares a provider crate's registry constants, its entry and its
/// `build` function, and registers the entry: in the crate root,
///
/// ```ignore
/// kastell_core::provider_crate! {
///     id: "acme",
///     display_name: "Acme Cloud",
///     token_env: "ACME_TOKEN",
///     default_endpoint: "https://api.acme.example/v1",
///     /// What it implements: everything but hard reboots.
///     capability: CloudCapability { reboot_hard: false, ..CloudCapability::all() },
///     /// Builds the provider. Refuses an empty token.
///     build: AcmeCloud::new,
/// }
/// ```
///
/// defines `ID`, `DISPLAY_NAME`, `TOKEN_ENV`, `DEFAULT_ENDPOINT`,
/// `CAPABILITY`, `ENTRY` (a [`ProviderEntry`] of them) and
/// `build(ProviderConfig) -> Result<Arc<dyn CloudProvider>>`, which wraps
/// the given constructor (`fn(ProviderConfig) -> Result<T>`), so every
/// provider crate exports the same set. The doc comments before
/// `capability` and `build` document those items.
#[macro_export]
macro_rules! provider_crate {
    (
        id: $id:literal,
        display_name: $name:literal,
        token_env: $token:literal,
        default_endpoint: $endpoint:literal,
        $(#[$capability_doc:meta])*
        capability: $capability:expr,
        $(#[$build_doc:meta])*
        build: $new:path $(,)?
    ) => {
        #[doc = concat!("The registry id (`", $id, "`).")]
        pub const ID: &str = $id;

        #[doc = concat!("The human name (", $name, ").")]
        pub const DISPLAY_NAME: &str = $name;

        #[doc = concat!("The environment variable holding the API token (`", $token, "`).")]
        pub const TOKEN_ENV: &str = $token;

        #[doc = concat!("The vendor's API endpoint (<", $endpoint, ">), used unless the configuration overrides it.")]
        pub const DEFAULT_ENDPOINT: &str = $endpoint;

        $(#[$capability_doc])*
        pub const CAPABILITY: $crate::CloudCapability = $capability;

        #[doc = concat!("The registry entry for ", $name, ".")]
        pub const ENTRY: $crate::ProviderEntry = $crate::ProviderEntry {
            id: ID,
            display_name: DISPLAY_NAME,
            token_env: TOKEN_ENV,
            capability: CAPABILITY,
            build,
        };

        $crate::register_provider!(ENTRY);

        $(#[$build_doc])*
        pub fn build(
            config: $crate::ProviderConfig,
        ) -> $crate::Result<::std::sync::Arc<dyn $crate::CloudProvider>> {
            Ok(::std::sync::Arc::new($new(config)?))
        }
    };
}

/// The body of [`register_provider!`] and [`register_platform!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __register {
    ($entry:path, $add:ident, $kind:literal) => {
        $crate::__private::inventory::submit! {
            $crate::registry::Registration {
                entry: &$entry,
                crate_name: env!("CARGO_PKG_NAME"),
            }
        }

        #[doc = concat!("Adds this crate's ", $kind, " to `registry` explicitly, for builds")]
        /// where link-time registration does not run.
        pub fn register(registry: &mut $crate::Registry) -> $crate::Result<()> {
            registry.$add(&$entry, env!("CARGO_PKG_NAME"))
        }
    };
}

#[derive(Debug)]
struct Slot<E: 'static> {
    entry: &'static E,
    crate_name: &'static str,
    /// Other crates that registered the same id.
    rivals: Vec<&'static str>,
}

/// The entries of one kind, sorted by id, with the crates that gave them.
#[derive(Debug)]
pub struct Entries<E: RegistryEntry> {
    slots: BTreeMap<&'static str, Slot<E>>,
}

impl<E: RegistryEntry> Default for Entries<E> {
    fn default() -> Self {
        Self {
            slots: BTreeMap::new(),
        }
    }
}

impl<E: RegistryEntry> Entries<E> {
    /// Every submission `inventory` collected, sorted so rivals are
    /// recorded in a stable order.
    fn collected<'a>(registrations: impl IntoIterator<Item = &'a Registration<E>>) -> Self {
        let mut all: Vec<&Registration<E>> = registrations.into_iter().collect();
        all.sort_by_key(|r| (r.entry.id(), r.crate_name));
        let mut entries = Self::default();
        for r in all {
            entries.insert(r.entry, r.crate_name);
        }
        entries
    }

    fn insert(&mut self, entry: &'static E, crate_name: &'static str) {
        match self.slots.get_mut(entry.id()) {
            Some(slot) => slot.rivals.push(crate_name),
            None => {
                self.slots.insert(
                    entry.id(),
                    Slot {
                        entry,
                        crate_name,
                        rivals: Vec::new(),
                    },
                );
            }
        }
    }

    /// Adds `entry`. Refuses an id that is already registered, naming
    /// both crates, and an empty or non-lower-case id.
    pub fn add(&mut self, entry: &'static E, crate_name: &'static str) -> Result<()> {
        check_id(entry.id())?;
        if let Some(slot) = self.slots.get(entry.id()) {
            return Err(duplicate(
                E::KIND,
                entry.id(),
                &[slot.crate_name, crate_name],
            ));
        }
        self.insert(entry, crate_name);
        Ok(())
    }

    /// Every entry, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = &'static E> + '_ {
        self.slots.values().map(|slot| slot.entry)
    }

    /// The ids, sorted.
    pub fn ids(&self) -> Vec<&'static str> {
        self.slots.keys().copied().collect()
    }

    /// Whether `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    /// The entry `id`. Fails when it is unknown (listing what is available
    /// and saying when a first-party feature was compiled out) or
    /// registered by more than one crate (naming them).
    pub fn get(&self, id: &str) -> Result<&'static E> {
        match self.slots.get(id) {
            Some(slot) if slot.rivals.is_empty() => Ok(slot.entry),
            Some(slot) => {
                let mut crates = vec![slot.crate_name];
                crates.extend(&slot.rivals);
                Err(duplicate(E::KIND, id, &crates))
            }
            None => Err(missing(E::KIND, id, &self.ids(), E::FIRST_PARTY)),
        }
    }

    /// Fails when any id was registered by more than one crate.
    pub fn check(&self) -> Result<()> {
        for (id, slot) in &self.slots {
            if !slot.rivals.is_empty() {
                self.get(id)?;
            }
        }
        Ok(())
    }
}

/// The providers and platforms this build knows, sorted by id.
#[derive(Debug, Default)]
pub struct Registry {
    providers: Entries<ProviderEntry>,
    platforms: Entries<PlatformEntry>,
}

impl Registry {
    /// An empty registry, for explicit registration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything registered at link time, collected once.
    ///
    /// Duplicate ids do not abort the collection: the id is kept with every
    /// rival crate recorded, and looking it up fails naming all of them.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry {
            providers: Entries::collected(inventory::iter::<ProviderRegistration>),
            platforms: Entries::collected(inventory::iter::<PlatformRegistration>),
        })
    }

    /// Adds a provider (see [`Entries::add`]).
    pub fn add_provider(
        &mut self,
        entry: &'static ProviderEntry,
        crate_name: &'static str,
    ) -> Result<()> {
        self.providers.add(entry, crate_name)
    }

    /// Adds a platform (see [`Entries::add`]).
    pub fn add_platform(
        &mut self,
        entry: &'static PlatformEntry,
        crate_name: &'static str,
    ) -> Result<()> {
        self.platforms.add(entry, crate_name)
    }

    /// Every provider, sorted by id.
    pub fn providers(&self) -> impl Iterator<Item = &'static ProviderEntry> + '_ {
        self.providers.iter()
    }

    /// Every platform, sorted by id.
    pub fn platforms(&self) -> impl Iterator<Item = &'static PlatformEntry> + '_ {
        self.platforms.iter()
    }

    /// Provider ids, sorted.
    pub fn provider_ids(&self) -> Vec<&'static str> {
        self.providers.ids()
    }

    /// Platform ids, sorted.
    pub fn platform_ids(&self) -> Vec<&'static str> {
        self.platforms.ids()
    }

    /// Whether a provider with `id` is registered.
    pub fn has_provider(&self, id: &str) -> bool {
        self.providers.contains(id)
    }

    /// Whether a platform with `id` is registered.
    pub fn has_platform(&self, id: &str) -> bool {
        self.platforms.contains(id)
    }

    /// The provider `id` (see [`Entries::get`]).
    pub fn provider(&self, id: &str) -> Result<&'static ProviderEntry> {
        self.providers.get(id)
    }

    /// The platform `id` (see [`Entries::get`]).
    pub fn platform(&self, id: &str) -> Result<&'static PlatformEntry> {
        self.platforms.get(id)
    }

    /// Fails when any id was registered by more than one crate.
    pub fn check(&self) -> Result<()> {
        self.providers.check()?;
        self.platforms.check()
    }
}

fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "registry id {id:?} must be non-empty lower-case letters, digits, '-' or '_'"
        )))
    }
}

fn duplicate(what: &str, id: &str, crates: &[&str]) -> Error {
    Error::new(
        ErrorKind::ConfigInvalid,
        format!(
            "{what} id {id:?} is registered by more than one crate: {}",
            crates.join(", ")
        ),
    )
    .with_hint(format!(
        "Link only one of these crates, or give one of them another {what} id"
    ))
}

fn missing(what: &str, id: &str, available: &[&str], first_party: &[&str]) -> Error {
    let list = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    let mut err = Error::not_found(format!(
        "unknown {what} {id:?}; available in this build: {list}"
    ));
    if first_party.contains(&id) {
        err = err.with_hint(format!(
            "The {what} {id:?} was compiled out of this build: rebuild with `--features {id}`"
        ));
    } else {
        err = err.with_hint(format!(
            "Check the spelling, or link the crate that provides the {what} {id:?}"
        ));
    }
    err
}

#[cfg(test)]
mod tests;
