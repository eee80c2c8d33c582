//! A [`CloudFixture`] over any provider simulator built on `kastell-sim`.
//! Each provider crate fills in a [`SimCloudFixture`]; the trials, fault
//! injection and request counting are shared.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kastell_core::types::ServerId;
use kastell_core::{CloudProvider, PollSchedule, ProviderConfig, Result, RetryPolicy, Secret};
use kastell_sim::{FaultRule, SimContext};

use crate::cloud::{Account, CloudFixture, CloudOp, Fault, TokenChoice};

/// Where each [`CloudOp`] goes at one provider: method and a path fragment
/// that only that operation's requests contain.
pub type RouteFn = fn(CloudOp, &Account) -> (&'static str, String);

/// A provider under test against its running simulator.
pub struct SimCloudFixture {
    /// Registry id.
    pub id: &'static str,
    /// The simulator's base URL, as the provider's endpoint.
    pub endpoint: String,
    /// The simulator's context (faults, request log, tokens).
    pub context: SimContext,
    /// The seeded account.
    pub account: Account,
    /// The provider's registry constructor.
    pub build: fn(ProviderConfig) -> Result<Arc<dyn CloudProvider>>,
    /// Boots of a server, read from the simulator's state.
    pub boots: Box<dyn Fn(&ServerId) -> u64 + Send + Sync>,
    /// Where each operation goes.
    pub route: RouteFn,
    /// Keeps the simulator running as long as the fixture lives.
    pub keep_alive: Box<dyn Any + Send + Sync>,
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

impl CloudFixture for SimCloudFixture {
    fn id(&self) -> &'static str {
        self.id
    }

    fn provider(&self, token: TokenChoice, retries: bool) -> Arc<dyn CloudProvider> {
        let tokens = &self.context.tokens;
        let token = match token {
            TokenChoice::ReadWrite => tokens.read_write.clone(),
            TokenChoice::ReadOnly => tokens.read_only.clone(),
            TokenChoice::Invalid => "not-a-valid-token-1234".to_owned(),
        };
        let config = ProviderConfig {
            token: Secret::new(token),
            endpoint: Some(self.endpoint.clone()),
            timeout: Some(Duration::from_secs(1)),
            retry: Some(if retries {
                test_retry_policy()
            } else {
                RetryPolicy::none()
            }),
            poll: Some(PollSchedule::new(
                Duration::from_millis(5),
                Duration::from_millis(40),
            )),
            options: Default::default(),
        };
        (self.build)(config).unwrap_or_else(|e| panic!("building {}: {e}", self.id))
    }

    fn account(&self) -> Account {
        self.account.clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![
            self.context.tokens.read_write.clone(),
            self.context.tokens.read_only.clone(),
            "not-a-valid-token-1234".to_owned(),
        ]
    }

    fn boots(&self, id: &ServerId) -> u64 {
        (self.boots)(id)
    }

    fn inject(&self, op: CloudOp, fault: Fault, times: u64, after_effect: bool) -> bool {
        let (method, path) = (self.route)(op, &self.account);
        let mut rule = FaultRule::new(method, &path, fault).times(times);
        if after_effect {
            rule = rule.after_effect();
        }
        self.context.faults.add(rule);
        true
    }

    fn requests(&self, op: CloudOp) -> Vec<Instant> {
        let (method, path) = (self.route)(op, &self.account);
        self.context
            .recorder
            .matching(method, &path)
            .into_iter()
            .map(|r| r.at)
            .collect()
    }
}
