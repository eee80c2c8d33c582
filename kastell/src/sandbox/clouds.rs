//! The provider simulators of the sandbox: one per cloud provider compiled
//! into this build (feature `sandbox`), each serving a small seeded account
//! on loopback.

use kastell_core::Result;

/// What the sandbox needs from a running provider simulator.
pub trait SandboxCloud: Send + Sync {
    /// The provider's registry id (`hetzner`, ...).
    fn provider_id(&self) -> &'static str;
    /// The API base URL on loopback.
    fn endpoint(&self) -> String;
    /// The read-write token the simulator accepts (a sandbox value, not a
    /// secret of anyone's).
    fn token(&self) -> String;
    /// The seeded servers of the account, in listing order.
    fn server_ids(&self) -> Vec<String>;
    /// How many times `server_id` has booted (rises by one per finished
    /// reboot).
    fn boots(&self, server_id: &str) -> u64;
    /// The simulator's tokens, faults, request log and clock.
    #[cfg(feature = "sandbox")]
    fn sim(&self) -> &kastell_sim::SimContext;
}

/// Implements [`SandboxCloud`] for a simulator type by delegating to its
/// inherent methods (every simulator has the same ones).
#[cfg(feature = "sandbox")]
macro_rules! sandbox_cloud {
    ($sim:ty, $id:expr) => {
        impl SandboxCloud for $sim {
            fn provider_id(&self) -> &'static str {
                $id
            }
            fn endpoint(&self) -> String {
                <$sim>::endpoint(self)
            }
            fn token(&self) -> String {
                self.context().tokens.read_write.clone()
            }
            fn server_ids(&self) -> Vec<String> {
                <$sim>::server_ids(self)
            }
            fn boots(&self, server_id: &str) -> u64 {
                <$sim>::boots(self, server_id)
            }
            fn sim(&self) -> &kastell_sim::SimContext {
                self.context()
            }
        }
    };
}

#[cfg(all(feature = "sandbox", feature = "digitalocean"))]
sandbox_cloud!(
    kastell_digitalocean::sim::DigitalOceanSim,
    kastell_digitalocean::ID
);
#[cfg(all(feature = "sandbox", feature = "hetzner"))]
sandbox_cloud!(kastell_hetzner::sim::HetznerSim, kastell_hetzner::ID);
#[cfg(all(feature = "sandbox", feature = "linode"))]
sandbox_cloud!(kastell_linode::sim::LinodeSim, kastell_linode::ID);
#[cfg(all(feature = "sandbox", feature = "vultr"))]
sandbox_cloud!(kastell_vultr::sim::VultrSim, kastell_vultr::ID);

/// Virtual seconds per real second: a 10 s reboot takes 50 ms.
#[cfg(feature = "sandbox")]
const SPEED: f64 = 200.0;

#[cfg(feature = "sandbox")]
fn started<T: SandboxCloud + 'static>(
    id: &str,
    sim: std::io::Result<T>,
) -> Result<Box<dyn SandboxCloud>> {
    sim.map(|s| Box::new(s) as Box<dyn SandboxCloud>)
        .map_err(|e| kastell_core::Error::io(format!("starting the {id} simulator"), e))
}

/// Starts the simulator of every cloud provider compiled in that `wanted`
/// accepts, in registry id order, on the current tokio runtime, each
/// seeding `servers` servers. Empty without the `sandbox` feature.
/// Refuses when a simulator cannot bind a loopback port.
#[cfg_attr(not(feature = "sandbox"), allow(unused_variables))]
pub async fn start(
    servers: usize,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Box<dyn SandboxCloud>>> {
    #[allow(unused_mut)]
    let mut clouds: Vec<Box<dyn SandboxCloud>> = Vec::new();
    #[cfg(feature = "sandbox")]
    {
        let options = kastell_sim::SimOptions {
            servers,
            scale: SPEED,
        };
        #[cfg(feature = "digitalocean")]
        if wanted("digitalocean") {
            clouds.push(started(
                "digitalocean",
                kastell_digitalocean::sim::DigitalOceanSim::start(options).await,
            )?);
        }
        #[cfg(feature = "hetzner")]
        if wanted("hetzner") {
            clouds.push(started(
                "hetzner",
                kastell_hetzner::sim::HetznerSim::start(options).await,
            )?);
        }
        #[cfg(feature = "linode")]
        if wanted("linode") {
            clouds.push(started(
                "linode",
                kastell_linode::sim::LinodeSim::start(options).await,
            )?);
        }
        #[cfg(feature = "vultr")]
        if wanted("vultr") {
            clouds.push(started(
                "vultr",
                kastell_vultr::sim::VultrSim::start(options).await,
            )?);
        }
    }
    Ok(clouds)
}
