//! The registry guard: the providers and platforms a build of kastell
//! registers are exactly the ones its features enable, plus any third-party
//! crate the binary links.

use std::collections::BTreeSet;
use std::sync::Arc;

use kastell_core::registry::{FIRST_PARTY_PLATFORMS, FIRST_PARTY_PROVIDERS};
use kastell_core::{ErrorKind, Registry};

// Name kastell so every provider crate its features enable is linked into
// this test binary, as it is into the `kastell` and `kastell-mcp` binaries.
use kastell as _;

/// A provider registered from outside kastell, the way a third-party crate
/// does it: only `kastell-core`, no `inventory` dependency.
mod third_party {
    use super::*;
    use kastell_core::memory::MemoryCloud;
    use kastell_core::{CloudCapability, CloudProvider, ProviderConfig, ProviderEntry, Result};

    fn build(_: ProviderConfig) -> Result<Arc<dyn CloudProvider>> {
        Ok(Arc::new(MemoryCloud::new()))
    }

    pub(super) const PROBE: ProviderEntry = ProviderEntry {
        id: "guard-probe",
        display_name: "Guard probe",
        token_env: "GUARD_PROBE_TOKEN",
        capability: CloudCapability::all(),
        build,
    };

    kastell_core::register_provider!(PROBE);
}

#[test]
fn enabled_features_and_registry_agree() {
    let registry = Registry::global();
    registry.check().expect("no id may be registered twice");
    for id in FIRST_PARTY_PROVIDERS {
        assert_eq!(
            kastell::build::feature_enabled(id),
            registry.has_provider(id),
            "provider {id}: feature and registry disagree (is the crate named in kastell/src/build.rs?)"
        );
    }
    for id in FIRST_PARTY_PLATFORMS {
        assert_eq!(
            kastell::build::feature_enabled(id),
            registry.has_platform(id),
            "platform {id}: feature and registry disagree (is the crate named in kastell/src/build.rs?)"
        );
    }
    let mut expected: BTreeSet<&str> = FIRST_PARTY_PROVIDERS
        .iter()
        .copied()
        .filter(|id| kastell::build::feature_enabled(id))
        .collect();
    expected.insert(third_party::PROBE.id);
    let registered: BTreeSet<&str> = registry.provider_ids().into_iter().collect();
    assert_eq!(registered, expected);
    let platforms: BTreeSet<&str> = registry.platform_ids().into_iter().collect();
    let expected_platforms: BTreeSet<&str> = FIRST_PARTY_PLATFORMS
        .iter()
        .copied()
        .filter(|id| kastell::build::feature_enabled(id))
        .collect();
    assert_eq!(platforms, expected_platforms);
}

#[test]
fn a_third_party_provider_is_found_and_built_through_the_registry() {
    let entry = Registry::global().provider("guard-probe").unwrap();
    let cloud = (entry.build)(kastell_core::ProviderConfig::default()).unwrap();
    assert_eq!(cloud.capability(), third_party::PROBE.capability);
    // The macro also generated an explicit registration path.
    let mut explicit = Registry::new();
    third_party::register(&mut explicit).unwrap();
    assert_eq!(explicit.provider_ids(), vec!["guard-probe"]);
    let err = third_party::register(&mut explicit).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.message().contains("kastell-tests"), "{err}");
}

#[test]
fn compiled_out_first_party_ids_say_which_feature_to_enable() {
    let registry = Registry::global();
    for id in FIRST_PARTY_PROVIDERS
        .iter()
        .filter(|id| !kastell::build::feature_enabled(id))
    {
        let err = registry.provider(id).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("guard-probe"), "{err}");
        assert!(err.hint().unwrap().contains(&format!("--features {id}")));
    }
    for id in FIRST_PARTY_PLATFORMS
        .iter()
        .filter(|id| !kastell::build::feature_enabled(id))
    {
        let err = registry.platform(id).unwrap_err();
        assert!(err.hint().unwrap().contains(&format!("--features {id}")));
    }
}
