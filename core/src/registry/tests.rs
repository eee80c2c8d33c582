use super::*;
use crate::memory::{MemoryCloud, MemoryPlatform, MemoryTransport};

fn build_cloud(_: ProviderConfig) -> Result<Arc<dyn CloudProvider>> {
    Ok(Arc::new(MemoryCloud::new()))
}

fn build_platform(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(MemoryPlatform::new(ctx.transport)))
}

static ALPHA: ProviderEntry = ProviderEntry {
    id: "alpha",
    display_name: "Alpha",
    token_env: "ALPHA_TOKEN",
    capability: CloudCapability::all(),
    build: build_cloud,
};
static ALPHA_AGAIN: ProviderEntry = ProviderEntry {
    id: "alpha",
    display_name: "Alpha (fork)",
    token_env: "ALPHA_TOKEN",
    capability: CloudCapability::all(),
    build: build_cloud,
};
static BETA: ProviderEntry = ProviderEntry {
    id: "beta",
    display_name: "Beta",
    token_env: "BETA_TOKEN",
    capability: CloudCapability::all(),
    build: build_cloud,
};
static BAD: ProviderEntry = ProviderEntry {
    id: "Bad Id",
    display_name: "Bad",
    token_env: "BAD_TOKEN",
    capability: CloudCapability::all(),
    build: build_cloud,
};
static MEM: PlatformEntry = PlatformEntry {
    id: "memory",
    display_name: "Memory",
    capability: PlatformCapability::all(),
    update: UpdateStyle::OWN_COMMAND,
    backup: BackupStyle::DATABASE_AND_CONFIGURATION,
    detect: None,
    build: build_platform,
};

#[test]
fn explicit_registration_sorts_and_refuses_duplicates() {
    let mut registry = Registry::new();
    registry.add_provider(&BETA, "crate-beta").unwrap();
    registry.add_provider(&ALPHA, "crate-alpha").unwrap();
    assert_eq!(registry.provider_ids(), vec!["alpha", "beta"]);
    let err = registry
        .add_provider(&ALPHA_AGAIN, "crate-alpha-fork")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.message().contains("crate-alpha"));
    assert!(err.message().contains("crate-alpha-fork"));
    assert!(registry.add_provider(&BAD, "crate-bad").is_err());
    assert!(registry.check().is_ok());
}

#[test]
fn link_time_style_duplicates_fail_on_lookup_naming_both() {
    let mut registry = Registry::new();
    registry.providers.insert(&ALPHA, "crate-alpha");
    registry.providers.insert(&ALPHA_AGAIN, "crate-alpha-fork");
    let err = registry.provider("alpha").unwrap_err();
    assert!(err.message().contains("crate-alpha, crate-alpha-fork"));
    assert!(registry.check().is_err());
}

#[test]
fn failed_lookup_lists_available_and_mentions_features() {
    let mut registry = Registry::new();
    registry.add_provider(&BETA, "crate-beta").unwrap();
    let err = registry.provider("hetzner").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("available in this build: beta"));
    assert!(err.hint().unwrap().contains("--features hetzner"));
    let err = registry.provider("nosuch").unwrap_err();
    assert!(!err.hint().unwrap().contains("--features"));
    let err = registry.platform("coolify").unwrap_err();
    assert!(err.message().contains("available in this build: none"));
    assert!(err.hint().unwrap().contains("compiled out"));
}

#[tokio::test]
async fn entries_build_working_implementations() {
    let mut registry = Registry::new();
    registry.add_provider(&ALPHA, "crate-alpha").unwrap();
    registry.add_platform(&MEM, "crate-mem").unwrap();
    let cloud = (registry.provider("alpha").unwrap().build)(ProviderConfig::default()).unwrap();
    assert_eq!(cloud.capability(), CloudCapability::all());
    let ctx = PlatformContext {
        transport: Arc::new(MemoryTransport::new()),
        target: PlatformTarget::default(),
        root: PlatformRoot::default(),
        privilege: Privilege::default(),
        options: BTreeMap::new(),
    };
    let platform = (registry.platform("memory").unwrap().build)(ctx).unwrap();
    assert_eq!(platform.capability(), PlatformCapability::all());
}

#[test]
fn the_core_test_build_sees_no_link_time_entries() {
    // Core's own unit-test binary links no provider crate, so the global
    // registry is empty here; the guard test in `kastell-tests` checks a
    // binary that does link providers.
    assert!(Registry::global().provider_ids().is_empty());
    assert!(Registry::global().check().is_ok());
}
