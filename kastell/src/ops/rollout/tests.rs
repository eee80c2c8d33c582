//! The driver's rules on a fleet of pretend servers: the canary stops
//! everything, the budget stops mid-batch, a held-back server is skipped,
//! a resumed rollout repeats nothing that finished and re-checks what was
//! in flight, an abort request stops between servers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::state::rollouts::{self, RolloutLock};

/// Pretend servers: which fail, which are held back, what a probe finds,
/// and every run in order.
#[derive(Default)]
struct Fake {
    failing: HashSet<String>,
    held: HashSet<String>,
    probes: HashMap<String, Probe>,
    runs: Mutex<Vec<String>>,
    stages: Mutex<Vec<String>>,
    abort_after: Option<(usize, std::path::PathBuf, String)>,
}

#[async_trait::async_trait]
impl Driven for Fake {
    async fn run(&self, server: &ServerRecord) -> ServerRun {
        let count = {
            let mut runs = self.runs.lock().unwrap();
            runs.push(server.name.clone());
            runs.len()
        };
        if let Some((after, dir, id)) = &self.abort_after
            && count == *after
        {
            rollouts::request_abort(dir, id).unwrap();
        }
        let ok = !self.failing.contains(&server.name);
        ServerRun {
            ok,
            detail: if ok { "done" } else { "broken" }.into(),
        }
    }

    async fn probe(&self, server: &ServerRecord) -> Probe {
        self.probes.get(&server.name).cloned().unwrap_or(Probe {
            boot_id: Some("boot-1".into()),
            healthy: Some(true),
            detail: "ok".into(),
        })
    }

    fn held_back(&self, server: &ServerRecord) -> Option<String> {
        self.held
            .contains(&server.name)
            .then(|| "outside its maintenance window".to_owned())
    }

    fn stage(&self, name: &str, servers: &[String]) {
        self.stages
            .lock()
            .unwrap()
            .push(format!("{name}: {}", servers.join(",")));
    }

    fn server(&self, _: &str, _: ServerState, _: &str) {}

    fn cancelled(&self) -> bool {
        false
    }
}

fn fleet(n: usize) -> Vec<ServerRecord> {
    (0..n)
        .map(|i| ServerRecord::new(format!("id-{i}"), format!("s{i}"), format!("10.0.0.{i}")))
        .collect()
}

fn shape(batch: usize, max_failures: usize, concurrency: usize) -> Shape {
    Shape {
        canary: Canary::Count(1),
        batch: Size::Count(batch),
        max_failures: Size::Count(max_failures),
        pause_secs: 0,
        concurrency,
    }
}

async fn start(
    dir: &std::path::Path,
    servers: &[ServerRecord],
    shape: &Shape,
    fake: Arc<Fake>,
) -> Journal {
    let op = <crate::ops::MaintainOp as crate::ops::Operation>::ID;
    let journal = new_journal(op, json!({}), Surface::Cli, servers, shape).unwrap();
    let lock = RolloutLock::try_acquire(dir, &journal.id, "test").unwrap();
    drive(dir, journal, lock, servers, fake).await.unwrap()
}

fn states(j: &Journal) -> Vec<(&str, ServerState)> {
    j.servers
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_canary_failure_touches_no_other_server() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake {
        failing: set(&["s0"]),
        ..Fake::default()
    });
    let j = start(tmp.path(), &fleet(5), &shape(2, 3, 2), fake.clone()).await;
    assert_eq!(*fake.runs.lock().unwrap(), ["s0"]);
    assert_eq!(j.state, RolloutState::Stopped);
    assert!(
        j.stop_reason
            .as_deref()
            .unwrap()
            .contains("canary s0 failed")
    );
    assert_eq!(j.count(ServerState::Untouched), 4);
    // What is on disk is what was returned.
    assert_eq!(Journal::load(tmp.path(), &j.id).unwrap().servers, j.servers);
}

#[tokio::test]
async fn the_budget_stops_the_rest_of_a_batch_and_the_batches_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake {
        failing: set(&["s1", "s2"]),
        ..Fake::default()
    });
    // canary s0; batch s1..s4 one at a time; budget 2.
    let j = start(tmp.path(), &fleet(7), &shape(4, 2, 1), fake.clone()).await;
    assert_eq!(*fake.runs.lock().unwrap(), ["s0", "s1", "s2"]);
    assert_eq!(j.state, RolloutState::Stopped);
    assert!(
        j.stop_reason
            .as_deref()
            .unwrap()
            .contains("failure budget of 2")
    );
    assert_eq!(j.names(ServerState::Untouched), ["s3", "s4", "s5", "s6"]);
}

#[tokio::test]
async fn a_held_back_server_is_skipped_not_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake {
        held: set(&["s2"]),
        ..Fake::default()
    });
    let j = start(tmp.path(), &fleet(4), &shape(2, 1, 2), fake.clone()).await;
    assert_eq!(j.state, RolloutState::Finished);
    assert_eq!(j.names(ServerState::Skipped), ["s2"]);
    assert_eq!(j.count(ServerState::Done), 3);
    assert!(!fake.runs.lock().unwrap().contains(&"s2".to_owned()));
    assert_eq!(
        *fake.stages.lock().unwrap(),
        ["canary: s0", "batch 1/2: s1,s2", "batch 2/2: s3"]
    );
}

#[tokio::test]
async fn a_skipped_canary_stops_the_rollout() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake {
        held: set(&["s0"]),
        ..Fake::default()
    });
    let j = start(tmp.path(), &fleet(3), &shape(2, 1, 2), fake.clone()).await;
    assert!(fake.runs.lock().unwrap().is_empty());
    assert_eq!(j.state, RolloutState::Stopped);
    assert_eq!(j.names(ServerState::Untouched), ["s1", "s2"]);
}

/// After a crash: s0 done, s1 in flight (it rebooted since), s2 in flight
/// (it did not), s3 in flight and unhealthy now, s4 pending. Resuming runs
/// s2 and s4 only.
#[tokio::test]
async fn a_resume_repeats_nothing_finished_and_rechecks_what_was_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let servers = fleet(5);
    let op = <crate::ops::MaintainOp as crate::ops::Operation>::ID;
    let mut journal = new_journal(op, json!({}), Surface::Cli, &servers, &shape(4, 2, 4)).unwrap();
    for (name, status) in [
        ("s0", ServerState::Done),
        ("s1", ServerState::InFlight),
        ("s2", ServerState::InFlight),
        ("s3", ServerState::InFlight),
    ] {
        let entry = journal.entry_mut(name).unwrap();
        entry.status = status;
        entry.boot_id_before = Some("boot-1".into());
    }
    journal.save(tmp.path()).unwrap();
    let mut probes = HashMap::new();
    probes.insert(
        "s1".to_owned(),
        Probe {
            boot_id: Some("boot-2".into()),
            healthy: Some(true),
            detail: "ok".into(),
        },
    );
    probes.insert(
        "s3".to_owned(),
        Probe {
            boot_id: Some("boot-2".into()),
            healthy: Some(false),
            detail: "degraded".into(),
        },
    );
    let fake = Arc::new(Fake {
        probes,
        ..Fake::default()
    });
    let loaded = Journal::load(tmp.path(), &journal.id).unwrap();
    let lock = RolloutLock::try_acquire(tmp.path(), &loaded.id, "resume").unwrap();
    let j = drive(tmp.path(), loaded, lock, &servers, fake.clone())
        .await
        .unwrap();
    let mut runs = fake.runs.lock().unwrap().clone();
    runs.sort();
    assert_eq!(runs, ["s2", "s4"]);
    assert_eq!(
        states(&j),
        [
            ("s0", ServerState::Done),
            ("s1", ServerState::Done),
            ("s2", ServerState::Done),
            ("s3", ServerState::Failed),
            ("s4", ServerState::Done),
        ]
    );
    assert!(
        j.servers[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("not repeated")
    );
    assert!(j.servers[3].detail.as_deref().unwrap().contains("degraded"));
    assert_eq!(j.state, RolloutState::Finished);
}

#[tokio::test]
async fn an_abort_request_stops_between_servers_and_leaves_the_rest_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let servers = fleet(5);
    let op = <crate::ops::MaintainOp as crate::ops::Operation>::ID;
    let journal = new_journal(op, json!({}), Surface::Cli, &servers, &shape(4, 1, 1)).unwrap();
    let fake = Arc::new(Fake {
        abort_after: Some((2, tmp.path().to_path_buf(), journal.id.clone())),
        ..Fake::default()
    });
    let lock = RolloutLock::try_acquire(tmp.path(), &journal.id, "test").unwrap();
    let j = drive(tmp.path(), journal, lock, &servers, fake.clone())
        .await
        .unwrap();
    assert_eq!(*fake.runs.lock().unwrap(), ["s0", "s1"]);
    assert_eq!(j.state, RolloutState::Aborted);
    assert_eq!(j.names(ServerState::Untouched), ["s2", "s3", "s4"]);
    assert!(!rollouts::abort_requested(tmp.path(), &j.id));
}
