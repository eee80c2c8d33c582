//! The surface every provider simulator shares, and the link-time registry
//! that lets the sandbox, the examples and the conformance fixtures find
//! every simulator linked into a program without naming any.
//!
//! A provider crate implements [`Simulator`] for its simulator type and
//! calls [`crate::register_simulator!`] once. That defines a `pub const
//! SIMULATOR:` [`SimulatorEntry`] next to the call and submits it to
//! `inventory`; [`simulators`] collects every submission. As with
//! providers, a crate that is only listed in `Cargo.toml` and never named
//! in code is not linked, and its simulator is not found.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::addresses::AddressPool;
use crate::context::SimContext;
use crate::seed::SimOptions;

/// A running provider API simulator on loopback. Dropping it stops the
/// server.
pub trait Simulator: Send + Sync + 'static {
    /// The registry id of the provider it simulates (`hetzner`, ...).
    fn provider_id(&self) -> &'static str;

    /// The API base URL to use as the provider's endpoint
    /// (`http://127.0.0.1:<port>/v1`, with the vendor's version prefix).
    fn endpoint(&self) -> String;

    /// Tokens, faults, the request log and the virtual clock.
    fn context(&self) -> &SimContext;

    /// How many times server `server_id` has booted: 1 when seeded, one
    /// more per finished reboot or rebuild; 0 for an unknown id.
    fn boots(&self, server_id: &str) -> u64;

    /// The seeded servers of the caller's account, in listing order.
    fn server_ids(&self) -> Vec<String>;

    /// A well-formed server id that names no server.
    fn missing_server_id(&self) -> String;

    /// A server of another account: it exists, but the simulator's tokens
    /// get 404 for it.
    fn foreign_server_id(&self) -> String;

    /// A snapshot (or image) of another account: 404 for the simulator's
    /// tokens.
    fn foreign_snapshot_id(&self) -> String;

    /// The public addresses the servers it creates get, in order (the
    /// sandbox queues fake hosts' loopback addresses here, so a created
    /// server answers SSH); by default the context's pool.
    fn addresses(&self) -> &AddressPool {
        &self.context().addresses
    }

    /// The servers created through its API and not yet deleted, in creation
    /// order; none for a simulator that cannot create servers.
    fn created_servers(&self) -> Vec<String> {
        Vec::new()
    }

    /// The ids of the SSH keys uploaded through its API and not yet
    /// deleted; none for a simulator without SSH keys.
    fn ssh_keys(&self) -> Vec<String> {
        Vec::new()
    }

    /// The id of the SSH key a person uploaded to the seeded account (not
    /// kastell's: unmarked), so tests can show kastell never deletes it;
    /// `None` for a simulator without SSH keys.
    fn person_ssh_key(&self) -> Option<String> {
        None
    }

    /// Whether the simulated vendor refuses to upload a public key the
    /// account already holds, as DigitalOcean (422) and Hetzner (409
    /// `uniqueness_error`) do; `false` where a second copy is stored (or
    /// no keys are uploaded).
    fn refuses_duplicate_keys(&self) -> bool {
        false
    }

    /// The read-write token the simulator accepts (a simulator value, not
    /// anyone's secret).
    fn read_write_token(&self) -> String {
        self.context().tokens.read_write.clone()
    }

    /// The read-only token the simulator accepts.
    fn read_only_token(&self) -> String {
        self.context().tokens.read_only.clone()
    }
}

impl fmt::Debug for dyn Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("provider", &self.provider_id())
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

/// What starting a simulator returns: a future of the running simulator, or
/// the error that kept it from binding a loopback port.
pub type StartFuture = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Simulator>>> + Send>>;

/// A provider simulator's registry entry.
#[derive(Debug, Clone, Copy)]
pub struct SimulatorEntry {
    /// The registry id of the provider it simulates; the provider's
    /// `ProviderEntry` carries the same id.
    pub provider_id: &'static str,
    /// Seeds an account per the options and serves it on a free loopback
    /// port of the current tokio runtime.
    pub start: fn(SimOptions) -> StartFuture,
}

/// A simulator entry as submitted to `inventory`, with the submitting crate.
#[doc(hidden)]
#[derive(Debug)]
pub struct SimulatorRegistration {
    pub entry: &'static SimulatorEntry,
    pub crate_name: &'static str,
}

inventory::collect!(SimulatorRegistration);

/// Boxes the start of a concrete simulator into a [`StartFuture`]; used by
/// [`crate::register_simulator!`].
pub fn start_boxed<S, F>(start: F) -> StartFuture
where
    S: Simulator,
    F: Future<Output = std::io::Result<S>> + Send + 'static,
{
    Box::pin(async move { start.await.map(|sim| Box::new(sim) as Box<dyn Simulator>) })
}

/// Registers a simulator: `register_simulator!(crate::ID, HetznerSim);` in
/// the provider's simulator module, where the type implements [`Simulator`]
/// and has `async fn start(SimOptions) -> std::io::Result<Self>`.
///
/// Defines `pub const SIMULATOR: SimulatorEntry` (for hosts that start it
/// explicitly) and submits it to `inventory`, so [`simulators`] finds it.
#[macro_export]
macro_rules! register_simulator {
    ($provider_id:expr, $sim:ty) => {
        /// This provider's simulator entry, as registered with
        /// `kastell_sim::register_simulator!`.
        pub const SIMULATOR: $crate::SimulatorEntry = $crate::SimulatorEntry {
            provider_id: $provider_id,
            start: |options| $crate::start_boxed(<$sim>::start(options)),
        };

        $crate::__private::inventory::submit! {
            $crate::SimulatorRegistration {
                entry: &SIMULATOR,
                crate_name: env!("CARGO_PKG_NAME"),
            }
        }
    };
}

/// Two crates registered a simulator for the same provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateSimulator {
    /// The provider id registered more than once.
    pub provider_id: &'static str,
    /// Every crate that registered it, sorted.
    pub crates: Vec<&'static str>,
}

impl fmt::Display for DuplicateSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} simulator is registered by more than one crate: {}",
            self.provider_id,
            self.crates.join(", ")
        )
    }
}

impl std::error::Error for DuplicateSimulator {}

/// Every simulator linked into this program, sorted by provider id.
/// Refuses when two crates register the same provider id, naming both,
/// instead of picking one.
pub fn simulators() -> Result<Vec<&'static SimulatorEntry>, DuplicateSimulator> {
    checked(
        inventory::iter::<SimulatorRegistration>
            .into_iter()
            .collect(),
    )
}

/// The entries of `registrations`, sorted by provider id; refuses an id
/// registered twice.
fn checked(
    mut registrations: Vec<&'static SimulatorRegistration>,
) -> Result<Vec<&'static SimulatorEntry>, DuplicateSimulator> {
    registrations.sort_by_key(|r| (r.entry.provider_id, r.crate_name));
    if let Some(pair) = registrations
        .windows(2)
        .find(|pair| pair[0].entry.provider_id == pair[1].entry.provider_id)
    {
        let id = pair[0].entry.provider_id;
        return Err(DuplicateSimulator {
            provider_id: id,
            crates: registrations
                .iter()
                .filter(|r| r.entry.provider_id == id)
                .map(|r| r.crate_name)
                .collect(),
        });
    }
    Ok(registrations.iter().map(|r| r.entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: SimOptions) -> StartFuture {
        Box::pin(async { Err(std::io::Error::other("not startable")) })
    }

    static B: SimulatorEntry = SimulatorEntry {
        provider_id: "b",
        start: never,
    };
    static A: SimulatorEntry = SimulatorEntry {
        provider_id: "a",
        start: never,
    };
    static FROM_X: SimulatorRegistration = SimulatorRegistration {
        entry: &B,
        crate_name: "x",
    };
    static FROM_Y: SimulatorRegistration = SimulatorRegistration {
        entry: &A,
        crate_name: "y",
    };
    static RIVAL: SimulatorRegistration = SimulatorRegistration {
        entry: &B,
        crate_name: "w",
    };

    #[test]
    fn entries_are_sorted_and_duplicates_refused() {
        let ids: Vec<&str> = checked(vec![&FROM_X, &FROM_Y])
            .unwrap_or_default()
            .iter()
            .map(|e| e.provider_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let err = checked(vec![&FROM_X, &FROM_Y, &RIVAL]).err();
        assert_eq!(
            err.as_ref().map(|e| (e.provider_id, e.crates.clone())),
            Some(("b", vec!["w", "x"]))
        );
        assert_eq!(
            err.map(|e| e.to_string()).unwrap_or_default(),
            "the b simulator is registered by more than one crate: w, x"
        );
    }
}
