//! `kastell-mcp --http` as an attacker and a crowd see it: raw HTTP/1.1
//! against the real binary. No token, a wrong one, the token in the wrong
//! header or the query, a foreign Host (DNS rebinding), a foreign Origin
//! and an oversized body are refused; the server's own loopback origin is
//! accepted; 50 clients at once are served; sessions beyond the cap evict
//! the oldest idle ones and an idle session expires; the server stays up
//! and never writes the token anywhere. Also the bind rules: a
//! non-loopback address needs `--allow-remote`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::sdk;
use sdk::HttpServer;

const TOKEN: &str = "http-security-test-token-9876543210";

/// An HTTP answer: status, headers (lowercased names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC messages of the body (plain JSON or SSE `data:` lines).
    fn messages(&self) -> Vec<Value> {
        if let Ok(v) = serde_json::from_str::<Value>(&self.body) {
            return vec![v];
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }
}

/// POSTs `body` to `path` on the server at `url`'s authority, with `headers`
/// (a default Host is added unless one is given), and reads the whole
/// answer (the connection is closed after it).
fn post(url: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let authority = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let mut stream = TcpStream::connect(&authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("POST {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    // An oversized body may be refused before it is all sent.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn initialize() -> Vec<u8> {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "kastell-http-test", "version": "1.0.0"}
        }
    })
    .to_string()
    .into_bytes()
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

/// A whole session over raw HTTP: initialize, initialized, tools/list and
/// a server_info list call. Returns the tool names and the call's result.
fn session(url: &str) -> (Vec<String>, Value) {
    let auth = bearer();
    let init = post(url, "/mcp", &[("Authorization", &auth)], &initialize());
    assert_eq!(init.status, 200, "{}", init.body);
    let id = init.header("mcp-session-id").unwrap().to_owned();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let sent = post(url, "/mcp", &headers, note.to_string().as_bytes());
    assert!(sent.status < 300, "{}", sent.status);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let listed = post(url, "/mcp", &headers, list.to_string().as_bytes());
    let tools = listed
        .messages()
        .into_iter()
        .find(|m| m["id"] == 2)
        .unwrap_or_else(|| panic!("no tools/list answer: {}", listed.body));
    let names = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "server_info", "arguments": {"action": "list"}}});
    let called = post(url, "/mcp", &headers, call.to_string().as_bytes());
    let result = called
        .messages()
        .into_iter()
        .find(|m| m["id"] == 3)
        .unwrap_or_else(|| panic!("no tools/call answer: {}", called.body));
    (names, result["result"].clone())
}

#[test]
fn requests_without_the_token_or_from_elsewhere_are_refused_and_the_crowd_is_served() {
    let mut server = HttpServer::start(&[], &[("KASTELL_MCP_TOKEN", TOKEN)]);
    let url = server.url.clone();
    let init = initialize();

    let none = post(&url, "/mcp", &[], &init);
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );

    let wrong_token = "Bearer not-the-token-at-all-0000000000";
    let wrong = post(&url, "/mcp", &[("Authorization", wrong_token)], &init);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("wrong") && !wrong.body.contains("not-the-token"));
    assert!(!wrong.body.contains(TOKEN));

    let misplaced = [
        vec![("X-Api-Key", TOKEN)],
        vec![("Authorization", TOKEN)],
        vec![("Authorization", "Basic aHR0cDpzZWNyZXQ=")],
        vec![("Cookie", "token=http-security-test-token-9876543210")],
    ];
    for headers in &misplaced {
        let answer = post(&url, "/mcp", headers, &init);
        assert_eq!(answer.status, 401, "{headers:?}: {}", answer.body);
    }
    let in_query = post(&url, &format!("/mcp?token={TOKEN}"), &[], &init);
    assert_eq!(in_query.status, 401);

    let auth = bearer();
    let rebinding = post(
        &url,
        "/mcp",
        &[("Authorization", &auth), ("Host", "evil.example:80")],
        &init,
    );
    assert_eq!(rebinding.status, 403, "{}", rebinding.body);
    let foreign = post(
        &url,
        "/mcp",
        &[("Authorization", &auth), ("Origin", "http://evil.example")],
        &init,
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);

    let huge = vec![b' '; 256 * 1024 + 1];
    let oversized = post(&url, "/mcp", &[("Authorization", &auth)], &huge);
    assert_eq!(oversized.status, 413, "{}", oversized.body);

    let crowd: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || session(&url))
        })
        .collect();
    for client in crowd {
        let (names, result) = client.join().unwrap();
        // SAFE_MODE is on: server_maintain, all of whose actions it
        // blocks, is not offered.
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(result["structuredContent"]["action"], "list", "{result}");
    }

    assert!(server.is_running(), "the server went down");
    let log = server.stop();
    assert!(
        log.contains("refused an MCP HTTP request") || log.contains("serving MCP"),
        "{log}"
    );
    assert!(
        !log.contains(TOKEN),
        "the token is in the server's log:\n{log}"
    );
}

/// The port of the server at `url`.
fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap()
}

#[test]
fn the_servers_own_loopback_origins_are_accepted_and_foreign_ones_refused() {
    // The MCP conformance suite's dns-rebinding-protection scenario: a
    // request from the server's own origin is served, a foreign Host or
    // Origin is refused.
    let server = HttpServer::start(&[], &[("KASTELL_MCP_TOKEN", TOKEN)]);
    let url = server.url.clone();
    let port = port_of(&url);
    let auth = bearer();
    let init = initialize();
    for (host, origin) in [
        (
            format!("localhost:{port}"),
            format!("http://localhost:{port}"),
        ),
        (
            format!("127.0.0.1:{port}"),
            format!("http://127.0.0.1:{port}"),
        ),
        (format!("127.0.0.1:{port}"), format!("http://[::1]:{port}")),
        (format!("[::1]:{port}"), format!("http://[::1]:{port}")),
    ] {
        let answer = post(
            &url,
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Host", &host),
                ("Origin", &origin),
            ],
            &init,
        );
        assert_eq!(answer.status, 200, "{host} {origin}: {}", answer.body);
        assert_eq!(
            answer.messages()[0]["result"]["serverInfo"]["name"],
            "kastell-mcp",
            "{}",
            answer.body
        );
    }
    let other_port = if port == 65535 { port - 1 } else { port + 1 };
    for (host, origin) in [
        (
            format!("localhost:{port}"),
            format!("http://localhost:{other_port}"),
        ),
        (
            format!("localhost:{port}"),
            format!("https://localhost:{port}"),
        ),
        (format!("localhost:{port}"), "http://localhost".to_owned()),
        (
            format!("localhost:{port}"),
            "http://evil.example".to_owned(),
        ),
        (
            format!("localhost:{port}"),
            format!("http://evil.example:{port}"),
        ),
        (format!("localhost:{port}"), "null".to_owned()),
        (
            "evil.example".to_owned(),
            format!("http://localhost:{port}"),
        ),
    ] {
        let answer = post(
            &url,
            "/mcp",
            &[
                ("Authorization", &auth),
                ("Host", &host),
                ("Origin", &origin),
            ],
            &init,
        );
        assert_eq!(answer.status, 403, "{host} {origin}: {}", answer.body);
    }
    server.stop();
}

/// Initializes a session (and sends `initialized`); returns its id.
fn open_session(url: &str) -> String {
    let auth = bearer();
    let init = post(url, "/mcp", &[("Authorization", &auth)], &initialize());
    assert_eq!(init.status, 200, "{}", init.body);
    let id = init.header("mcp-session-id").unwrap().to_owned();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let sent = post(
        url,
        "/mcp",
        &session_headers(&auth, &id),
        note.to_string().as_bytes(),
    );
    assert!(sent.status < 300, "{} {}", sent.status, sent.body);
    id
}

fn session_headers<'a>(auth: &'a str, id: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("Authorization", auth),
        ("Mcp-Session-Id", id),
        ("MCP-Protocol-Version", "2025-11-25"),
    ]
}

/// A ping in session `id`: 200 with its answer while the session lives,
/// 404 once it is gone.
fn ping(url: &str, id: &str) -> Answer {
    let auth = bearer();
    let ping = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
    post(
        url,
        "/mcp",
        &session_headers(&auth, id),
        ping.to_string().as_bytes(),
    )
}

fn assert_gone(url: &str, id: &str) {
    let answer = ping(url, id);
    assert_eq!(
        answer.status, 404,
        "{id}: {} {}",
        answer.status, answer.body
    );
    assert!(answer.body.contains("Session not found"), "{}", answer.body);
}

fn assert_alive(url: &str, id: &str) {
    let answer = ping(url, id);
    assert_eq!(answer.status, 200, "{id}: {}", answer.body);
    assert!(
        answer
            .messages()
            .iter()
            .any(|m| m["id"] == 9 && m.get("result").is_some()),
        "{}",
        answer.body
    );
}

#[test]
fn sessions_beyond_the_cap_evict_the_oldest_idle_ones() {
    const CAP: usize = 5;
    let server = HttpServer::start(
        &[],
        &[
            ("KASTELL_MCP_TOKEN", TOKEN),
            ("KASTELL_MCP_MAX_SESSIONS", "5"),
        ],
    );
    let url = server.url.clone();
    assert!(
        server.banner.contains("at most 5 HTTP sessions"),
        "{}",
        server.banner
    );
    let ids: Vec<String> = (0..CAP + 50).map(|_| open_session(&url)).collect();
    let (old, newest) = ids.split_at(50);
    for id in newest {
        assert_alive(&url, id);
    }
    for id in old {
        assert_gone(&url, id);
    }
    // Using a session keeps it: the oldest of the live ones is used, a new
    // session evicts the next one instead.
    assert_alive(&url, &newest[0]);
    let newer = open_session(&url);
    assert_alive(&url, &newest[0]);
    assert_gone(&url, &newest[1]);
    assert_alive(&url, &newer);
    let mut server = server;
    assert!(server.is_running());
    server.stop();
}

#[test]
fn an_idle_session_expires() {
    let server = HttpServer::start(
        &[],
        &[
            ("KASTELL_MCP_TOKEN", TOKEN),
            ("KASTELL_MCP_SESSION_IDLE", "2"),
        ],
    );
    let url = server.url.clone();
    let kept = open_session(&url);
    let left = open_session(&url);
    // One session is used every half second, the other not at all.
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        assert_alive(&url, &kept);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_gone(&url, &left);
    assert_alive(&url, &kept);
    let bad = Command::new(env!("CARGO_BIN_EXE_kastell-mcp"))
        .args(["--http", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KASTELL_DIR", tempfile::tempdir().unwrap().path().join("s"))
        .env("KASTELL_MCP_TOKEN", TOKEN)
        .env("KASTELL_MCP_SESSION_IDLE", "30m")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("KASTELL_MCP_SESSION_IDLE"), "{stderr}");
    server.stop();
}

#[test]
fn a_token_file_is_made_once_and_remote_binds_need_an_explicit_flag() {
    let server = HttpServer::start(&[], &[]);
    let file = server.kastell_dir().join("mcp-token");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    assert!(
        server.banner.contains(&token),
        "the new token was not shown once"
    );
    let auth = format!("Bearer {token}");
    let answer = post(
        &server.url,
        "/mcp",
        &[("Authorization", &auth)],
        &initialize(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.messages()[0]["result"]["serverInfo"]["name"],
        "kastell-mcp"
    );
    server.stop();

    let refused = Command::new(env!("CARGO_BIN_EXE_kastell-mcp"))
        .args(["--http", "0.0.0.0:0"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KASTELL_DIR", tempfile::tempdir().unwrap().path().join("s"))
        .env("KASTELL_MCP_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--allow-remote"),
        "{stderr}"
    );
}
