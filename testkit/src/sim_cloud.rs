//! A [`CloudFixture`] over any provider simulator: anything implementing
//! [`Simulator`], with the provider built from the registry entry of the
//! simulator's provider id. The trials, fault injection and request
//! counting are shared; a provider crate only says where each operation's
//! requests go.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::types::ServerId;
use kastell_core::{
    CloudProvider, PollSchedule, ProviderConfig, Registry, Result, RetryPolicy, Secret,
};
use kastell_sim::{FaultRule, SimContext, SimOptions, Simulator, SimulatorEntry, public_ip};

use crate::cloud::{Account, CloudFixture, CloudOp, Fault, TokenChoice};

/// Where each [`CloudOp`] goes at one provider: method and a path fragment
/// that only that operation's requests contain.
pub type RouteFn = fn(CloudOp, &Account) -> (&'static str, String);

/// A token no simulator and no vendor accepts.
const INVALID_TOKEN: &str = "not-a-valid-token-1234";

/// A provider under test against its running simulator.
pub struct SimCloudFixture {
    sim: Box<dyn Simulator>,
    /// The seeded account (see [`Account::seeded`]).
    pub account: Account,
    build: fn(ProviderConfig) -> Result<Arc<dyn CloudProvider>>,
    route: RouteFn,
}

/// Retries fast enough for tests, with a real deadline.
pub fn test_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.1,
        deadline: Duration::from_secs(30),
    }
}

/// Polls short enough for a simulator running at 200×.
pub fn test_poll_schedule() -> PollSchedule {
    PollSchedule::new(Duration::from_millis(5), Duration::from_millis(40))
}

impl Account {
    /// The account every simulator seeds: servers A and B are the first
    /// two listed, server `i` has [`public_ip`]`(i)` and (with
    /// `private_ip_a`) [`kastell_sim::private_ip`]`(0)` for A. Panics on a
    /// simulator seeded with fewer than two servers.
    pub fn seeded(sim: &dyn Simulator, private_ip_a: bool) -> Self {
        let ids = sim.server_ids();
        assert!(ids.len() >= 2, "the trials need two seeded servers");
        let id = |s: &str| ServerId::new(s).unwrap_or_else(|e| panic!("server id {s}: {e}"));
        Self {
            server_a: id(&ids[0]),
            server_b: id(&ids[1]),
            missing_server: id(&sim.missing_server_id()),
            public_ip_a: public_ip(0),
            private_ip_a: private_ip_a.then(|| kastell_sim::private_ip(0)),
            last_ip: public_ip(ids.len() - 1),
            server_count: ids.len(),
        }
    }
}

impl SimCloudFixture {
    /// A fixture over the running `sim`, building its provider through the
    /// registry entry of `sim.provider_id()` (the provider crate must be
    /// linked into the test). Panics when no provider has that id.
    pub fn new(sim: Box<dyn Simulator>, route: RouteFn) -> Self {
        let entry = Registry::global()
            .provider(sim.provider_id())
            .unwrap_or_else(|e| panic!("the provider of the {} simulator: {e}", sim.provider_id()));
        Self {
            account: Account::seeded(sim.as_ref(), true),
            build: entry.build,
            sim,
            route,
        }
    }

    /// Starts the simulator of `entry` with `options` and wraps it, see
    /// [`SimCloudFixture::new`]. Panics when it cannot start.
    pub async fn start(entry: &SimulatorEntry, options: SimOptions, route: RouteFn) -> Self {
        let sim = (entry.start)(options)
            .await
            .unwrap_or_else(|e| panic!("starting the {} simulator: {e}", entry.provider_id));
        Self::new(sim, route)
    }

    /// The running simulator.
    pub fn simulator(&self) -> &dyn Simulator {
        self.sim.as_ref()
    }

    /// The simulator's tokens, faults, request log and clock.
    pub fn context(&self) -> &SimContext {
        self.sim.context()
    }

    /// A provider against the simulator with `token`, a one-second request
    /// timeout, the given retry policy and short polls.
    pub fn provider_with(&self, token: String, retry: RetryPolicy) -> Arc<dyn CloudProvider> {
        let config = ProviderConfig {
            token: Secret::new(token),
            endpoint: Some(self.sim.endpoint()),
            timeout: Some(Duration::from_secs(1)),
            retry: Some(retry),
            poll: Some(test_poll_schedule()),
            options: Default::default(),
        };
        (self.build)(config).unwrap_or_else(|e| panic!("building {}: {e}", self.id()))
    }
}

impl CloudFixture for SimCloudFixture {
    fn id(&self) -> &'static str {
        self.sim.provider_id()
    }

    fn provider(&self, token: TokenChoice, retries: bool) -> Arc<dyn CloudProvider> {
        let token = match token {
            TokenChoice::ReadWrite => self.sim.read_write_token(),
            TokenChoice::ReadOnly => self.sim.read_only_token(),
            TokenChoice::Invalid => INVALID_TOKEN.to_owned(),
        };
        let retry = if retries {
            test_retry_policy()
        } else {
            RetryPolicy::none()
        };
        self.provider_with(token, retry)
    }

    fn account(&self) -> Account {
        self.account.clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.sim.read_write_token(),
            self.sim.read_only_token(),
            INVALID_TOKEN.to_owned(),
        ]
    }

    fn boots(&self, id: &ServerId) -> u64 {
        self.sim.boots(id.as_str())
    }

    fn inject(&self, op: CloudOp, fault: Fault, times: u64, after_effect: bool) -> bool {
        let (method, path) = (self.route)(op, &self.account);
        let mut rule = FaultRule::new(method, &path, fault).times(times);
        if after_effect {
            rule = rule.after_effect();
        }
        self.context().faults.add(rule);
        true
    }

    fn requests(&self, op: CloudOp) -> Vec<Instant> {
        let (method, path) = (self.route)(op, &self.account);
        self.context()
            .recorder
            .matching(method, &path)
            .into_iter()
            .map(|r| r.at)
            .collect()
    }

    fn created_servers(&self) -> Vec<String> {
        self.sim.created_servers()
    }

    fn uploaded_keys(&self) -> Vec<String> {
        self.sim.ssh_keys()
    }

    fn person_key(&self) -> Option<String> {
        self.sim.person_ssh_key()
    }

    fn refuses_duplicate_keys(&self) -> bool {
        self.sim.refuses_duplicate_keys()
    }

    fn queue_addresses(&self, addresses: &[Ipv4Addr]) -> bool {
        self.sim.addresses().add(addresses.iter().copied());
        true
    }
}
