//! How `server add` recognises the platform a server runs: a platform's
//! registry entry may carry a [`PlatformDetection`], a directory only a
//! server running it has. [`detect_platform`] checks the markers of every
//! registered platform that has one, over one [`Transport`], in their
//! [`PlatformDetection::order`], and answers the first one present (or
//! none: the server runs no platform kastell knows, i.e. bare).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::registry::{PlatformEntry, Registry};
use crate::shell::RemoteCommand;
use crate::transport::Transport;
use crate::types::PlatformRoot;

/// How long one marker probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A platform's own detection, in its registry entry
/// ([`PlatformEntry::detect`]): the directory whose presence on a server
/// means the platform runs there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformDetection {
    /// An absolute directory on the server (`/etc/dokploy`), resolved under
    /// the server's [`PlatformRoot`]. It must be free of `..`;
    /// [`detect_platform`] refuses one that is not.
    pub marker_dir: &'static str,
    /// Where the platform is tried among those that detect: lower first,
    /// ties by id. A platform whose install may leave another's marker
    /// behind goes before it (Dokploy, 10, before Coolify, 20, as the
    /// original tool checked them).
    pub order: u8,
}

/// What [`detect_platform`] found.
#[derive(Debug, Clone)]
pub struct Detected {
    /// The platform whose marker exists; `None` when no marker did.
    pub platform: Option<&'static PlatformEntry>,
    /// The marker directories looked for (under the root), in the order
    /// they were tried, up to and including the one found.
    pub searched: Vec<String>,
}

/// The registered platforms that detect, in the order they are tried.
pub fn detectors(registry: &Registry) -> Vec<(&'static PlatformEntry, PlatformDetection)> {
    let mut found: Vec<_> = registry
        .platforms()
        .filter_map(|entry| entry.detect.map(|d| (entry, d)))
        .collect();
    found.sort_by_key(|(entry, d)| (d.order, entry.id));
    found
}

/// Probes `transport` for the markers of `detectors` (see [`detectors`])
/// under `root`, one `test -d` each in order, and answers the first
/// platform whose marker directory exists. Refuses (with the transport's
/// error: unreachable, authentication, host key) when a probe cannot run,
/// a marker that is not an absolute path free of `..`, and a probe that
/// fails other than by the directory being absent.
pub async fn detect_platform(
    transport: &dyn Transport,
    root: &PlatformRoot,
    detectors: &[(&'static PlatformEntry, PlatformDetection)],
) -> Result<Detected> {
    let mut searched = Vec::new();
    for (entry, detection) in detectors {
        if PlatformRoot::relative(detection.marker_dir).is_none()
            || !detection.marker_dir.starts_with('/')
        {
            return Err(Error::config_invalid(format!(
                "platform {} detects by the marker {:?}, which is not an absolute path without `..`",
                entry.id, detection.marker_dir
            ))
            .with_hint("Fix the platform's registry entry (PlatformDetection::marker_dir)"));
        }
        let path = root.join(detection.marker_dir);
        let command = RemoteCommand::template("test -d {}", &[&path])?;
        let output = transport.exec(&command, PROBE_TIMEOUT).await?;
        searched.push(path.clone());
        match output.status {
            0 => {
                return Ok(Detected {
                    platform: Some(entry),
                    searched,
                });
            }
            1 => {}
            status => {
                return Err(Error::new(
                    crate::ErrorKind::CommandFailed,
                    format!(
                        "probing {path} for platform {} exited with status {status}: {}",
                        entry.id,
                        output.stderr_text().trim()
                    ),
                ));
            }
        }
    }
    Ok(Detected {
        platform: None,
        searched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryPlatform, MemoryTransport, Reply};
    use crate::types::{BackupStyle, UpdateStyle};
    use crate::{Platform, PlatformCapability, PlatformContext};
    use std::sync::Arc;

    fn build(ctx: PlatformContext) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(MemoryPlatform::new(ctx.transport)))
    }

    const fn entry(id: &'static str, detect: Option<PlatformDetection>) -> PlatformEntry {
        PlatformEntry {
            id,
            display_name: id,
            capability: PlatformCapability::all(),
            update: UpdateStyle::OWN_COMMAND,
            backup: BackupStyle::DATABASE_AND_CONFIGURATION,
            detect,
            build,
        }
    }

    static LATE: PlatformEntry = entry(
        "late",
        Some(PlatformDetection {
            marker_dir: "/data/late",
            order: 20,
        }),
    );
    static EARLY: PlatformEntry = entry(
        "early",
        Some(PlatformDetection {
            marker_dir: "/etc/early",
            order: 10,
        }),
    );
    static PLAIN: PlatformEntry = entry("plain", None);
    static BAD: PlatformEntry = entry(
        "bad",
        Some(PlatformDetection {
            marker_dir: "etc/../x",
            order: 1,
        }),
    );

    fn registry(entries: &[&'static PlatformEntry]) -> Registry {
        let mut registry = Registry::new();
        for e in entries {
            registry.add_platform(e, "test").unwrap();
        }
        registry
    }

    #[tokio::test]
    async fn markers_are_tried_in_order_under_the_root_and_the_first_present_wins() {
        let registry = registry(&[&LATE, &PLAIN, &EARLY]);
        let order: Vec<&str> = detectors(&registry).iter().map(|(e, _)| e.id).collect();
        assert_eq!(
            order,
            ["early", "late"],
            "platforms without a marker are not tried"
        );
        let root = PlatformRoot::new("/srv/host").unwrap();

        // Both markers present: the earlier one wins and the later one is
        // never probed.
        let both = MemoryTransport::new();
        both.on("test -d ", Reply::ok(""));
        let found = detect_platform(&both, &root, &detectors(&registry))
            .await
            .unwrap();
        assert_eq!(found.platform.map(|e| e.id), Some("early"));
        assert_eq!(found.searched, ["/srv/host/etc/early"]);
        assert_eq!(both.commands(), ["test -d '/srv/host/etc/early'"]);

        // Only the later one.
        let late = MemoryTransport::new();
        late.on("test -d ", Reply::exit(1, ""));
        late.on("test -d '/srv/host/data/late'", Reply::ok(""));
        let found = detect_platform(&late, &root, &detectors(&registry))
            .await
            .unwrap();
        assert_eq!(found.platform.map(|e| e.id), Some("late"));
        assert_eq!(
            found.searched,
            ["/srv/host/etc/early", "/srv/host/data/late"]
        );

        // None: no platform, every marker named.
        let none = MemoryTransport::new();
        none.on("test -d ", Reply::exit(1, ""));
        let found = detect_platform(&none, &PlatformRoot::default(), &detectors(&registry))
            .await
            .unwrap();
        assert!(found.platform.is_none());
        assert_eq!(found.searched, ["/etc/early", "/data/late"]);
    }

    #[tokio::test]
    async fn an_unreachable_host_a_failing_probe_and_a_bad_marker_are_errors() {
        let registry = registry(&[&EARLY]);
        let down = MemoryTransport::new();
        down.set_reachable(false);
        let err = detect_platform(&down, &PlatformRoot::default(), &detectors(&registry))
            .await
            .unwrap_err();
        assert_ne!(err.kind(), crate::ErrorKind::CommandFailed, "{err}");

        let broken = MemoryTransport::new();
        broken.on("test -d ", Reply::exit(2, "test: bad"));
        let err = detect_platform(&broken, &PlatformRoot::default(), &detectors(&registry))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::CommandFailed);
        assert!(err.message().contains("status 2"), "{err}");

        let registry = self::registry(&[&BAD]);
        let err = detect_platform(&broken, &PlatformRoot::default(), &detectors(&registry))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::ConfigInvalid);
    }
}
