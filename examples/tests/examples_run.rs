//! Every provider example runs against its simulator when no token is set,
//! and every platform example against its local fake host.

// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The example binary `name`, which `cargo test` builds next to the tests.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join(name)
}

fn run_without_tokens(name: &str) -> String {
    let out = Command::new(example(name))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running example {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn check_tour(name: &str) {
    let out = run_without_tokens(name);
    assert!(out.contains("simulator at http://127.0.0.1:"), "{out}");
    assert!(out.contains("creating snapshot"), "{out}");
    assert!(out.contains("Available"), "{out}");
    assert!(out.contains("no longer listed"), "{out}");
}

#[test]
fn hetzner() {
    check_tour("hetzner");
}

#[test]
fn digitalocean() {
    check_tour("digitalocean");
}

#[test]
fn vultr() {
    check_tour("vultr");
}

#[test]
fn linode() {
    check_tour("linode");
}

#[test]
fn custom_provider() {
    let out = run_without_tokens("custom_provider");
    assert!(out.contains("rebooted web-1"), "{out}");
    assert!(out.contains("snapshot refused before any request"), "{out}");
    // Its simulator, registered in the example alone, joins the sandbox.
    assert!(
        out.contains("the sandbox started the acme simulator at http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("with servers acme-1, acme-2"), "{out}");
}

#[test]
fn coolify() {
    let out = run_without_tokens("coolify");
    assert!(
        out.contains("rows after the restore: 1:blog, 2:shop, 3:wiki"),
        "{out}"
    );
    assert!(
        out.contains("platform running: true, database running: true"),
        "{out}"
    );
}

#[test]
fn dokploy() {
    let out = run_without_tokens("dokploy");
    assert!(
        out.contains("rows after the restore: 1:blog, 2:shop, 3:wiki"),
        "{out}"
    );
}

#[test]
fn bare() {
    let out = run_without_tokens("bare");
    assert!(
        out.contains("crontab after the restore: 0 3 * * * root /usr/local/bin/nightly"),
        "{out}"
    );
    assert!(
        out.contains("sshd_config on the host unchanged: true"),
        "{out}"
    );
}
