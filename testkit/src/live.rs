//! The live mode of the cloud conformance trials: with
//! `KASTELL_TEST_LIVE=<provider id>` (several ids may be given, separated
//! by commas) and that provider's token variable set, the read-only trials
//! run against the vendor's real API, at its default endpoint, on whatever
//! servers the account holds. Trials that write or inject faults never run
//! live: they run against the simulator only.
//!
//! Without the variable nothing reaches a real API: the live test of each
//! provider prints why it was skipped and passes.

use std::sync::Arc;
use std::time::Instant;

use kastell_core::types::{ServerId, ServerStatus};
use kastell_core::{CloudProvider, ProviderConfig, ProviderEntry, Registry, RetryPolicy, Secret};

use crate::cloud::{Account, CloudFixture, CloudOp, Fault, TokenChoice};

/// The variable naming the providers to test live.
pub const LIVE_VAR: &str = "KASTELL_TEST_LIVE";

/// A token the vendor rejects, for the trials' invalid-token checks.
const INVALID_TOKEN: &str = "not-a-valid-token-1234";

/// What the live mode will do for one provider.
#[derive(Debug)]
pub enum LiveMode {
    /// Not asked for: the reason, to print.
    Off(String),
    /// Asked for and possible: the provider's entry and token.
    On(&'static ProviderEntry, Secret),
}

/// Whether `ids` (the value of [`LIVE_VAR`]) names `id`.
fn names(ids: &str, id: &str) -> bool {
    ids.split(',').map(str::trim).any(|named| named == id)
}

/// The live mode for provider `id`, reading variables through `var`.
/// Panics when the live mode is asked for but the provider is not
/// registered or its token is not set: a live run that silently tests
/// nothing would be worse than a failure.
pub fn mode(id: &str, var: impl Fn(&str) -> Option<String>) -> LiveMode {
    let asked = var(LIVE_VAR).unwrap_or_default();
    if !names(&asked, id) {
        return LiveMode::Off(format!(
            "live trials of {id} skipped: set {LIVE_VAR}={id} and the provider's token \
             variable to run the read-only trials against the real API"
        ));
    }
    let entry = Registry::global()
        .provider(id)
        .unwrap_or_else(|e| panic!("{LIVE_VAR} names {id}: {e}"));
    match var(entry.token_env).filter(|t| !t.trim().is_empty()) {
        Some(token) => LiveMode::On(entry, Secret::new(token)),
        None => panic!(
            "{LIVE_VAR} names {id} but {} is not set: the live trials need a real token",
            entry.token_env
        ),
    }
}

/// A provider under test against an account at the vendor (or, for the
/// live mode's own tests, at `endpoint`). Only read-only trials may run on
/// it: it injects no faults, counts no requests and knows no boots.
pub struct LiveFixture {
    entry: &'static ProviderEntry,
    token: Secret,
    endpoint: Option<String>,
    account: Account,
}

impl LiveFixture {
    /// Connects with `token` (at the vendor's endpoint when `endpoint` is
    /// `None`) and finds the account the trials use: server A is the
    /// first running server with a public IPv4, the last server with one
    /// stands for the last page. Panics when the account has no such
    /// server.
    pub async fn connect(
        entry: &'static ProviderEntry,
        token: Secret,
        endpoint: Option<String>,
    ) -> Self {
        let mut fixture = Self {
            entry,
            token,
            endpoint,
            account: Account {
                server_a: placeholder(),
                server_b: placeholder(),
                missing_server: placeholder(),
                public_ip_a: std::net::Ipv4Addr::UNSPECIFIED,
                private_ip_a: None,
                last_ip: std::net::Ipv4Addr::UNSPECIFIED,
                server_count: 0,
            },
        };
        let servers = fixture
            .provider(TokenChoice::ReadWrite, true)
            .list_servers()
            .await
            .unwrap_or_else(|e| panic!("listing the {} account: {e}", entry.id));
        let public: Vec<_> = servers.iter().filter(|s| s.public_ipv4.is_some()).collect();
        let a = public
            .iter()
            .find(|s| s.status == ServerStatus::Running)
            .unwrap_or_else(|| {
                panic!(
                    "the {} account needs a running server with a public IPv4",
                    entry.id
                )
            });
        let last = public.last().copied().unwrap_or(a);
        let b = public.iter().find(|s| s.id != a.id).copied().unwrap_or(a);
        fixture.account = Account {
            server_a: a.id.clone(),
            server_b: b.id.clone(),
            missing_server: placeholder(),
            public_ip_a: a.public_ipv4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            private_ip_a: None,
            last_ip: last.public_ipv4.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            server_count: servers.len(),
        };
        fixture
    }
}

/// The live account's `missing_server`: the read-only trials never use it
/// (no id is known to be free at every vendor).
fn placeholder() -> ServerId {
    ServerId::new("0").unwrap_or_else(|e| panic!("placeholder id: {e}"))
}

impl CloudFixture for LiveFixture {
    fn id(&self) -> &'static str {
        self.entry.id
    }

    /// The live token stands for both the read-write and the read-only
    /// choice (the read-only trials only read).
    fn provider(&self, token: TokenChoice, retries: bool) -> Arc<dyn CloudProvider> {
        let token = match token {
            TokenChoice::ReadWrite | TokenChoice::ReadOnly => self.token.clone(),
            TokenChoice::Invalid => Secret::new(INVALID_TOKEN),
        };
        let config = ProviderConfig {
            token,
            endpoint: self.endpoint.clone(),
            retry: (!retries).then(RetryPolicy::none),
            ..ProviderConfig::default()
        };
        (self.entry.build)(config).unwrap_or_else(|e| panic!("building {}: {e}", self.entry.id))
    }

    fn account(&self) -> Account {
        self.account.clone()
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.token.expose().to_owned(), INVALID_TOKEN.to_owned()]
    }

    fn boots(&self, _id: &ServerId) -> u64 {
        0
    }

    fn inject(&self, _op: CloudOp, _fault: Fault, _times: u64, _after_effect: bool) -> bool {
        false
    }

    fn requests(&self, _op: CloudOp) -> Vec<Instant> {
        Vec::new()
    }
}

/// Runs every read-only trial against `fixture`, one after the other.
pub async fn read_only_trials(fixture: &dyn CloudFixture) {
    crate::cloud::lists_every_page_and_finds_by_ip(fixture).await;
    crate::cloud::find_by_ip_picks_the_public_address(fixture).await;
    crate::cloud::refuses_an_invalid_token(fixture).await;
    crate::cloud::registry_entry_matches_the_provider(fixture).await;
}

/// The live test of provider `id`: the read-only trials against the real
/// API when [`mode`] says so, else a printed note.
pub async fn run(id: &str) {
    match mode(id, |name| std::env::var(name).ok()) {
        LiveMode::Off(why) => eprintln!("{why}"),
        LiveMode::On(entry, token) => {
            eprintln!("{LIVE_VAR}: running the read-only trials against the real {id} API");
            read_only_trials(&LiveFixture::connect(entry, token, None).await).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_providers_go_live() {
        assert!(names("hetzner", "hetzner"));
        assert!(names("vultr, hetzner", "hetzner"));
        assert!(!names("hetzner-eu", "hetzner"));
        assert!(!names("", "hetzner"));
        let off = mode("hetzner", |_| None);
        assert!(matches!(off, LiveMode::Off(why) if why.contains("KASTELL_TEST_LIVE=hetzner")));
        let other = mode("hetzner", |name| {
            (name == LIVE_VAR).then(|| "vultr".to_owned())
        });
        assert!(matches!(other, LiveMode::Off(_)));
    }
}
