//! The MCP registry entry, `server.json` at the repository root: it
//! parses, follows the registry's schema where a publisher can get it
//! wrong (name, description, version, transport), describes this crate at
//! its version, lists every provider token variable this build reads (as
//! secrets) and no variable kastell does not read, and the command it
//! describes (`kastell` with its package arguments) is the MCP server
//! `kastell-mcp`, answering at the same version.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The schema the entry follows (the registry's current one).
const SCHEMA: &str = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";

fn entry() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../server.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"))
}

/// `example.invalid` for `https://example.invalid/kastell`.
fn host(url: &str) -> &str {
    url.split("://").nth(1).unwrap().split('/').next().unwrap()
}

#[test]
fn server_json_describes_this_crate_at_its_version() {
    let entry = entry();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(entry["$schema"], SCHEMA);
    assert_eq!(entry["version"], version, "server.json's version");

    // The registry's rules: a reverse-DNS namespace, one slash, at most
    // 100 characters of description.
    let name = entry["name"].as_str().unwrap();
    let (namespace, server) = name.split_once('/').unwrap();
    assert!(!server.contains('/') && !server.is_empty(), "{name}");
    let repository = env!("CARGO_PKG_REPOSITORY");
    let reversed: Vec<&str> = host(repository).split('.').rev().collect();
    assert_eq!(
        namespace,
        reversed.join("."),
        "the namespace is the project's domain, reversed"
    );
    assert_eq!(server, "kastell-mcp");
    assert_eq!(entry["websiteUrl"], repository);
    let description = entry["description"].as_str().unwrap();
    assert!(
        (1..=100).contains(&description.chars().count()),
        "{description}"
    );

    let packages = entry["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 1, "{packages:?}");
    let package = &packages[0];
    assert_eq!(package["registryType"], "cargo");
    assert_eq!(package["identifier"], env!("CARGO_PKG_NAME"));
    assert_eq!(package["version"], version, "the package's version");
    assert_eq!(package["transport"], serde_json::json!({"type": "stdio"}));
}

#[test]
fn server_json_lists_the_variables_kastell_reads() {
    let entry = entry();
    let vars = entry["packages"][0]["environmentVariables"]
        .as_array()
        .unwrap();
    let listed = |name: &str| vars.iter().find(|v| v["name"] == name);
    let registry = kastell_core::Registry::global();
    let mut tokens = Vec::new();
    for id in registry.provider_ids() {
        let token = registry.provider(id).unwrap().token_env;
        let var = listed(token).unwrap_or_else(|| panic!("{token} ({id}) is not listed"));
        assert_eq!(var["isSecret"], true, "{token} is a secret");
        tokens.push(token);
    }
    assert!(!tokens.is_empty(), "this build links no provider");
    for var in vars {
        let name = var["name"].as_str().unwrap();
        assert!(
            tokens.contains(&name) || name.starts_with("KASTELL_"),
            "{name} is not a variable kastell reads"
        );
        assert!(!var["description"].as_str().unwrap().is_empty(), "{name}");
    }
    for switch in ["KASTELL_DIR", "KASTELL_SAFE_MODE", "KASTELL_SAFETY_LEVEL"] {
        assert!(listed(switch).is_some(), "{switch} is not listed");
    }
    assert_eq!(listed("KASTELL_SAFE_MODE").unwrap()["default"], "true");
}

#[test]
fn the_described_command_is_kastell_mcp_at_the_same_version() {
    let entry = entry();
    let package = &entry["packages"][0];
    let args: Vec<&str> = package["packageArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["type"], "positional", "{a}");
            a["value"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        package["identifier"], "kastell",
        "the crate whose binary runs"
    );
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kastell"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KASTELL_DIR", home.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"registry-entry","version":"0"}}}}}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let answer: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?} ({status:?})"));
    let info = &answer["result"]["serverInfo"];
    assert_eq!(info["name"], "kastell-mcp", "{answer}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{answer}");
    assert!(status.success(), "{status:?}");
}
