//! The provider simulators of the sandbox: every simulator linked into this
//! build (registered with `kastell_sim::register_simulator!`) whose
//! provider is in the registry, each serving a small seeded account on
//! loopback. First-party simulators are linked with the `sandbox` feature;
//! a third-party provider crate that registers one joins the same way.

use kastell_core::{Error, Registry, Result};
use kastell_sim::{SimOptions, simulators};

pub use kastell_sim::Simulator;

/// Virtual seconds per real second: a 10 s reboot takes 50 ms.
const SPEED: f64 = 200.0;

/// Starts every registered simulator whose provider is registered too and
/// that `wanted` accepts, in provider id order, on the current tokio
/// runtime, each seeding `servers` servers. Empty when none is linked
/// (a build without the `sandbox` feature). Refuses when two crates
/// register a simulator for the same provider, or when a simulator cannot
/// bind a loopback port.
pub async fn start(
    servers: usize,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Box<dyn Simulator>>> {
    let entries = simulators().map_err(|e| {
        Error::config_invalid(e.to_string())
            .with_hint("Link only one simulator per provider")
            .with_source(e)
    })?;
    let options = SimOptions {
        servers,
        scale: SPEED,
    };
    let registry = Registry::global();
    let mut clouds = Vec::new();
    for entry in entries {
        let id = entry.provider_id;
        if registry.provider(id).is_err() || !wanted(id) {
            continue;
        }
        let sim = (entry.start)(options)
            .await
            .map_err(|e| Error::io(format!("starting the {id} simulator"), e))?;
        clouds.push(sim);
    }
    Ok(clouds)
}
