//! `kastell-bench --quick` runs every benchmark end to end at small sizes
//! and writes a report with every section and its baseline. Needs the
//! `kastell` and `kastell-mcp` binaries of the same build (as
//! `cargo test --workspace` builds them).
// Test helpers: a panic is the test failing, with the error shown.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn every_benchmark_runs_and_reports_its_baseline() {
    let bench = Path::new(env!("CARGO_BIN_EXE_kastell-bench"));
    let bin_dir = bench.parent().unwrap();
    for needed in ["kastell", "kastell-mcp"] {
        assert!(
            bin_dir.join(needed).is_file(),
            "{needed} is not built in {}: run `cargo test --workspace` (or `cargo build -p kastell --bins` first)",
            bin_dir.display()
        );
    }
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("BENCHMARKS.md");
    let out = Command::new(bench)
        .args(["--quick", "--out"])
        .arg(&report)
        .arg("--bin-dir")
        .arg(bin_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    for section in [
        "## 1. MCP start",
        "## 2. Backup throughput",
        "## 2b. Backup of a Coolify-shaped host",
        "## 3. Restore throughput",
        "## 4. Fleet operations over 8 servers",
        "## 5. API economy",
        "## 6. Reboot detection",
        "## 7b. Repository over a shaped link (SFTP)",
        "## 8. Restore drill",
    ] {
        assert!(text.contains(section), "{section} missing:\n{text}");
    }
    for baseline in [
        "cat (baseline)",
        "ssh cat (baseline)",
        "ssh cat > (baseline)",
        "ssh pg_dump stream (baseline)",
        "maintain, 1 server",
        "pg_restore of the dump file into a fresh cluster (baseline)",
    ] {
        assert!(text.contains(baseline), "{baseline} missing:\n{text}");
    }
    for provider in ["hetzner", "digitalocean", "vultr", "linode"] {
        assert!(
            text.contains(&format!("| {provider} | find by IP")),
            "{provider} economy row missing:\n{text}"
        );
    }
}
