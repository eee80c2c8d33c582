//! What this build of kastell contains.
//!
//! Each first-party provider and platform crate sits behind a cargo feature
//! of the same name. A crate that is listed in `Cargo.toml` but never named
//! in code is not linked, and its registry entry silently vanishes; this
//! module is where every enabled crate is named, and the registry guard test
//! (`tests/tests/registry_guard.rs`) checks that features and registry agree.
//!
//! To add a first-party crate: add the feature and optional dependency in
//! `kastell/Cargo.toml`, name the crate below under its `cfg`, and add its
//! row to [`FEATURES`].

#[cfg(feature = "bare")]
use kastell_bare as _;
#[cfg(feature = "coolify")]
use kastell_coolify as _;
#[cfg(feature = "digitalocean")]
use kastell_digitalocean as _;
#[cfg(feature = "dokploy")]
use kastell_dokploy as _;
#[cfg(feature = "hetzner")]
use kastell_hetzner as _;
#[cfg(feature = "linode")]
use kastell_linode as _;
#[cfg(feature = "vultr")]
use kastell_vultr as _;

/// Every first-party feature with whether it is enabled in this build, as
/// `(registry id, enabled)`. The guard test checks every id kastell
/// reserves (`kastell_core::registry::FIRST_PARTY_*`) against it.
pub const FEATURES: &[(&str, bool)] = &[
    ("bare", cfg!(feature = "bare")),
    ("coolify", cfg!(feature = "coolify")),
    ("digitalocean", cfg!(feature = "digitalocean")),
    ("dokploy", cfg!(feature = "dokploy")),
    ("hetzner", cfg!(feature = "hetzner")),
    ("linode", cfg!(feature = "linode")),
    ("vultr", cfg!(feature = "vultr")),
];

/// Whether the first-party provider or platform `id` was compiled in.
pub fn feature_enabled(id: &str) -> bool {
    FEATURES.iter().any(|(name, on)| *name == id && *on)
}

/// The names of the enabled first-party features, sorted.
pub fn enabled_features() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = FEATURES
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    names.sort_unstable();
    names
}
