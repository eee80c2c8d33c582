//! Shared helpers for tests that run the real `kastell` binary.

use std::path::Path;
use std::process::{Command, Stdio};

/// A `kastell` command with a clean environment: only PATH, HOME and
/// KASTELL_DIR (`<dir>/state`), so no SAFE_MODE, token or strict host-key
/// setting from the host leaks in.
pub(crate) fn kastell(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kastell"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("KASTELL_DIR", dir.join("state"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `kastell args` against `sandbox`'s store and simulators, off the
/// async runtime.
#[cfg(feature = "sandbox")]
pub(crate) async fn kastell_in(
    sandbox: &kastell::surfaces::sandbox::Sandbox,
    home: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay());
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// A sandbox of `servers` Hetzner servers running bare (each its own fake
/// host), without the manual server, its state under `dir/state`.
#[cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
pub(crate) async fn hetzner_sandbox(
    dir: &Path,
    servers: usize,
) -> kastell::surfaces::sandbox::Sandbox {
    let plan = kastell::surfaces::sandbox::SandboxPlan {
        providers: Some(vec!["hetzner".into()]),
        servers_per_provider: servers,
        manual_server: false,
        platform: None,
        spare_hosts_per_provider: 0,
    };
    kastell::surfaces::sandbox::Sandbox::start_with(&dir.join("state"), &plan)
        .await
        .unwrap()
}

/// [`hetzner_sandbox`] of one server.
#[cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
pub(crate) async fn one_server_sandbox(dir: &Path) -> kastell::surfaces::sandbox::Sandbox {
    hetzner_sandbox(dir, 1).await
}

/// [`one_server_sandbox`] with its server tagged `prod`; returns the
/// sandbox and the server's name.
#[cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
pub(crate) async fn prod_sandbox(dir: &Path) -> (kastell::surfaces::sandbox::Sandbox, String) {
    let sandbox = one_server_sandbox(dir).await;
    let name = sandbox.servers()[0].name.clone();
    sandbox
        .store()
        .update(&name, |r| r.tags = vec!["prod".into()])
        .unwrap();
    (sandbox, name)
}

/// Writes `value` as the safety levels (`safety.json`) of the store in
/// `state`.
pub(crate) fn write_safety(state: &Path, value: &serde_json::Value) {
    std::fs::write(
        state.join("safety.json"),
        serde_json::to_vec_pretty(value).unwrap(),
    )
    .unwrap();
}

/// The JSON a successful run printed (`Null` when it printed none);
/// panics with both outputs when the run failed.
pub(crate) fn ok_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Creates the repository `name` at `location` with `kastell repo init`,
/// its password in a 0600 file beside it (`<location>.pw`); panics when
/// the init fails.
#[cfg(all(feature = "sandbox", feature = "hetzner", feature = "bare"))]
pub(crate) async fn init_repo(
    sandbox: &kastell::surfaces::sandbox::Sandbox,
    home: &Path,
    name: &str,
    location: &Path,
    password: &str,
) {
    use std::os::unix::fs::PermissionsExt;
    let password_file = location.with_extension("pw");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = [
        "repo",
        "init",
        name,
        location.to_str().unwrap(),
        "--password-file",
        password_file.to_str().unwrap(),
    ];
    ok_json(&kastell_in(sandbox, home, &args).await);
}

/// Starts `kastell args` against `sandbox`'s store and simulators in the
/// background, its output dropped, for a test that signals it.
#[cfg(feature = "sandbox")]
pub(crate) fn spawn_kastell_in(
    sandbox: &kastell::surfaces::sandbox::Sandbox,
    home: &Path,
    args: &[&str],
) -> std::process::Child {
    let mut cmd = kastell(home, args);
    cmd.env("KASTELL_DIR", sandbox.store().dir())
        .envs(sandbox.env_overlay())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

/// Waits until `ready` holds, looking every 50 ms; panics naming `what`
/// after a minute.
#[cfg(feature = "sandbox")]
pub(crate) async fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{what} did not happen within a minute"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `kastell --json doctor`'s leftovers: marked servers outside the fleet,
/// found at every provider, as it describes them.
#[cfg(feature = "sandbox")]
pub(crate) async fn leftovers(
    sandbox: &kastell::surfaces::sandbox::Sandbox,
    home: &Path,
) -> Vec<String> {
    let out = kastell_in(sandbox, home, &["--json", "doctor"]).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["leftovers"]["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Flips a byte in the middle of the stored artifact of `server`'s local
/// backups whose file name starts with `prefix`; returns its path.
#[cfg(feature = "sandbox")]
pub(crate) fn corrupt_artifact(store: &Path, server: &str, prefix: &str) -> std::path::PathBuf {
    let artifact = std::fs::read_dir(store.join("backups").join(server))
        .unwrap()
        .map(|b| b.unwrap().path())
        .filter(|b| b.is_dir())
        .flat_map(|b| std::fs::read_dir(b).unwrap())
        .map(|f| f.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no artifact {prefix}* of {server}"));
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, &bytes).unwrap();
    artifact
}
