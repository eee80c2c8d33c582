//! A real throwaway cluster: it starts on the version asked for, answers
//! through its client commands, refuses a version newer than any
//! installed, and leaves nothing behind when dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use kastell_pg::{Cluster, installed, pick};

#[test]
fn a_cluster_starts_on_the_version_picked_and_is_gone_when_dropped() {
    let all = installed().unwrap();
    let oldest = all.first().unwrap().clone();
    assert_eq!(pick(Some(oldest.major)).unwrap(), oldest);
    assert_eq!(
        pick(Some(1)).unwrap(),
        oldest,
        "an old dump goes to the oldest newer server"
    );
    assert_eq!(pick(None).unwrap(), all.last().unwrap().clone());
    let err = pick(Some(999)).unwrap_err();
    assert!(err.message().contains("PostgreSQL 999"), "{err}");
    assert!(err.hint().unwrap().contains("postgresql-999"), "{err:?}");

    let cluster = Cluster::start_on(oldest.clone()).unwrap();
    assert_eq!(cluster.major(), oldest.major);
    let version = cluster.psql("postgres", "SHOW server_version_num").unwrap();
    assert_eq!(version.parse::<u32>().unwrap() / 10_000, oldest.major);
    let out = cluster
        .client("psql")
        .args(["-X", "-A", "-t", "-d", "postgres", "-c", "SELECT 40 + 2"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let data = cluster.data_dir();
    assert!(data.is_dir());
    drop(cluster);
    assert!(!data.exists(), "the cluster's directory is removed");
}
