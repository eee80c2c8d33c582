//! `kastell-mcp --http ADDR`: the same server over MCP's Streamable HTTP
//! transport, at `http://ADDR/mcp`.
//!
//! What it refuses, before a request reaches the tools:
//! - a request without `Authorization: Bearer <token>` carrying the token
//!   (401 with `WWW-Authenticate: Bearer`; compared in constant time; the
//!   token is never logged, echoed or put in an error). The token is
//!   `KASTELL_MCP_TOKEN`, else the one in `KASTELL_DIR/mcp-token`, created
//!   (mode 0600, 32 random bytes) and printed once on first start;
//! - a `Host` that is not this machine's loopback name or address (or one
//!   named with `--allowed-host`): DNS-rebinding protection;
//! - an `Origin` that is neither the server's own (`http://` with a
//!   loopback name or the bound address, and the port it listens on:
//!   `http://localhost:PORT`, `http://127.0.0.1:PORT`, `http://[::1]:PORT`)
//!   nor one named with `--allowed-origin` (rmcp leaves Origin unchecked by
//!   default; kastell checks it). A page served from another port or host
//!   is foreign, so a browser tab cannot drive the tools;
//! - a body over [`MAX_BODY`] (413);
//! - a new session when all of them are busy at the cap (503, see
//!   [`sessions`]): sessions expire when idle and are capped.
//!
//! It binds loopback unless `--allow-remote` is given; a remote bind
//! also needs the token from `KASTELL_MCP_TOKEN` or a token file that
//! already exists, never one made up on the spot that nobody has seen.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kastell_core::{Error, ErrorKind, Secret};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;

mod sessions;

pub(crate) use sessions::{IDLE_VAR, MAX_VAR, SessionLimits, Sessions};

use super::server::KastellMcp;
use super::task::Tasks;
use crate::ops::Context;

/// The environment variable holding the HTTP bearer token.
pub(crate) const TOKEN_ENV: &str = "KASTELL_MCP_TOKEN";

/// The token file's name in `KASTELL_DIR`.
pub(crate) const TOKEN_FILE: &str = "mcp-token";

/// The largest request body accepted (tool arguments are at most a few
/// hundred bytes).
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// The shortest token accepted from `KASTELL_MCP_TOKEN` or a token file.
const MIN_TOKEN_LEN: usize = 16;

/// How `--http` was asked to serve.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Whether a non-loopback bind address was explicitly allowed.
    pub allow_remote: bool,
    /// Host names accepted besides loopback's.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted besides the server's own (see [`own_origins`]).
    pub allowed_origins: Vec<String>,
}

fn refused(message: impl Into<String>, hint: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_hint(hint.to_owned())
}

/// Where the token comes from.
#[derive(Debug)]
enum TokenSource {
    Env,
    File(PathBuf),
    Created(PathBuf),
}

/// Checks a token's shape: long enough, printable, no whitespace.
fn check_token(token: &str, from: &str) -> Result<(), Error> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(refused(
            format!("The MCP token in {from} is too short ({MIN_TOKEN_LEN} characters at least)"),
            "Use a long random token, e.g. `openssl rand -hex 32`",
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refused(
            format!("The MCP token in {from} holds spaces or control characters"),
            "Use printable ASCII only, e.g. `openssl rand -hex 32`",
        ));
    }
    Ok(())
}

/// Reads the token file, refusing one other users could read.
fn read_token_file(path: &Path) -> Result<String, Error> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(refused(
            format!("{} is not a regular file", path.display()),
            "Remove it; kastell-mcp creates a new token file on its next start",
        ));
    }
    if meta.mode() & 0o077 != 0 || meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(refused(
            format!(
                "{} is readable by others or owned by another user (mode {:o})",
                path.display(),
                meta.mode() & 0o777
            ),
            "chmod 600 it (as its owner), or remove it for a new one",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let token = text.trim().to_owned();
    check_token(&token, &path.display().to_string())?;
    Ok(token)
}

/// 32 random bytes from the kernel, hex-encoded.
fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::io("reading /dev/urandom for the MCP token", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the token file (0600, never overwriting one that appeared
/// meanwhile) holding a new random token.
fn create_token_file(path: &Path) -> Result<String, Error> {
    let token = random_token()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(format!("{token}\n").as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(token)
}

/// The token: `KASTELL_MCP_TOKEN`, else the token file in `dir`, else a new
/// token file (only when `may_create`).
fn load_token(
    env_token: Option<String>,
    dir: &Path,
    may_create: bool,
) -> Result<(Secret, TokenSource), Error> {
    if let Some(token) = env_token {
        check_token(&token, TOKEN_ENV)?;
        return Ok((Secret::new(token), TokenSource::Env));
    }
    let path = dir.join(TOKEN_FILE);
    if path.exists() || !may_create {
        if !path.exists() {
            return Err(refused(
                "A remote bind needs a token you chose: none is set",
                "Set KASTELL_MCP_TOKEN, or start once on loopback to create KASTELL_DIR/mcp-token",
            ));
        }
        let token = read_token_file(&path)?;
        return Ok((Secret::new(token), TokenSource::File(path)));
    }
    let token = create_token_file(&path)?;
    Ok((Secret::new(token), TokenSource::Created(path)))
}

/// The bearer check in front of the MCP service.
async fn authorize(State(token): State<Arc<Secret>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let matches =
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.expose().as_bytes())));
    if matches {
        return next.run(request).await;
    }
    let reason = if presented.is_some() {
        "the bearer token is wrong"
    } else {
        "an Authorization: Bearer header is required"
    };
    tracing::warn!("refused an MCP HTTP request: {reason}");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"kastell-mcp\"")],
        axum::Json(serde_json::json!({
            "error": format!("unauthorized: {reason}"),
            "hint": "Send Authorization: Bearer <token>, the token in KASTELL_MCP_TOKEN or KASTELL_DIR/mcp-token",
        })),
    )
        .into_response()
}

/// The hosts accepted in `Host`: loopback's names, the bind address, and
/// what the operator added.
fn allowed_hosts(options: &HttpOptions) -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let bound = options.bind.ip();
    if !bound.is_unspecified() {
        hosts.push(bound.to_string());
    }
    hosts.extend(options.allowed_hosts.iter().cloned());
    hosts.dedup();
    hosts
}

/// The server's own origins, accepted in `Origin`: `http://` with each
/// loopback name (`localhost`, `127.0.0.1`, `[::1]`) and the bound address
/// (unless it is unspecified), each with the port `local` listens on. An
/// origin on another port or host is not one of them.
pub(crate) fn own_origins(local: SocketAddr) -> Vec<String> {
    let port = local.port();
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "[::1]".to_owned(),
    ];
    let bound = local.ip();
    let bound = match bound {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if !local.ip().is_unspecified() && !hosts.contains(&bound) {
        hosts.push(bound);
    }
    hosts
        .into_iter()
        .map(|host| format!("http://{host}:{port}"))
        .collect()
}

/// Refuses a request that would open a session while every one of the
/// capped sessions is busy: `503` with `Retry-After`, before rmcp would
/// answer it with a bare `500`.
async fn refuse_when_full(
    State(sessions): State<Arc<Sessions>>,
    request: Request,
    next: Next,
) -> Response {
    let opens_session = request.method() == axum::http::Method::POST
        && !request.headers().contains_key("mcp-session-id");
    if !opens_session || !sessions.full_of_busy() {
        return next.run(request).await;
    }
    let max = sessions.limits().max;
    tracing::warn!("refused a new MCP session: all {max} sessions are busy");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        axum::Json(serde_json::json!({
            "error": format!("all {max} MCP sessions are busy"),
            "hint": format!(
                "Retry when a running call ends, or raise {MAX_VAR} (idle sessions are closed \
                 after {IDLE_VAR} seconds)"
            ),
        })),
    )
        .into_response()
}

/// Closes idle sessions every [`SessionLimits::sweep_every`] until dropped.
struct Sweeper(tokio::task::JoinHandle<()>);

impl Sweeper {
    fn start(sessions: Arc<Sessions>) -> Self {
        let every = sessions.limits().sweep_every();
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                sessions.sweep().await;
            }
        }))
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `ctx` over Streamable HTTP, with `tasks` shared by every
/// session, until the future is dropped (`kastell-mcp` does that on SIGINT
/// or SIGTERM, once running work reached a safe point). `kastell_dir`
/// holds the token file.
pub async fn serve_http(
    ctx: Context,
    options: HttpOptions,
    kastell_dir: &Path,
    tasks: Tasks,
) -> Result<(), Error> {
    let remote = !options.bind.ip().is_loopback();
    if remote && !options.allow_remote {
        return Err(refused(
            format!("{} is not a loopback address", options.bind.ip()),
            "Serve on 127.0.0.1 (the default), or pass --allow-remote to accept other machines \
             (with KASTELL_MCP_TOKEN set, and --allowed-host for the name clients use)",
        ));
    }
    let limits = SessionLimits::from_env(&ctx.env)?;
    let env_token = ctx.env.get(TOKEN_ENV).filter(|t| !t.is_empty());
    let (token, source) = load_token(env_token, kastell_dir, !remote)?;
    let token = Arc::new(token);
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|e| Error::io(format!("listening on {}", options.bind), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;

    let mut origins = own_origins(local);
    origins.extend(options.allowed_origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(&options))
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(MAX_BODY);
    let factory = {
        let (ctx, tasks) = (ctx.clone(), tasks.clone());
        move || Ok(KastellMcp::sharing(ctx.clone(), tasks.clone()))
    };
    let sessions = Arc::new(Sessions::new(limits));
    let _sweeper = Sweeper::start(sessions.clone());
    let service = StreamableHttpService::new(factory, sessions.clone(), config);
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            sessions,
            refuse_when_full,
        ))
        .layer(axum::middleware::from_fn_with_state(
            token.clone(),
            authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY));

    eprintln!("{}", super::startup_line(&ctx));
    match &source {
        TokenSource::Env => {
            eprintln!("kastell-mcp: HTTP clients authenticate with KASTELL_MCP_TOKEN")
        }
        TokenSource::File(path) => eprintln!(
            "kastell-mcp: HTTP clients authenticate with the token in {}",
            path.display()
        ),
        TokenSource::Created(path) => eprintln!(
            "kastell-mcp: created the HTTP token in {} (shown this once): {}",
            path.display(),
            token.expose()
        ),
    }
    eprintln!(
        "kastell-mcp: at most {} HTTP sessions, each closed after {} s idle ({MAX_VAR}, {IDLE_VAR})",
        limits.max,
        limits.idle.as_secs()
    );
    eprintln!("kastell-mcp: serving MCP over HTTP at http://{local}/mcp");

    axum::serve(listener, router)
        .await
        .map_err(|e| Error::io("serving MCP over HTTP", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (token, source) = load_token(None, dir.path(), true).unwrap();
        assert!(matches!(source, TokenSource::Created(_)));
        assert_eq!(token.expose().len(), 64);
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, source) = load_token(None, dir.path(), true).unwrap();
        assert!(matches!(source, TokenSource::File(_)));
        assert_eq!(again.expose(), token.expose());
        assert!(!format!("{again:?}").contains(token.expose()));
    }

    #[test]
    fn the_own_origins_are_loopback_and_the_bound_address_on_the_listening_port() {
        let local: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert_eq!(
            own_origins(local),
            [
                "http://localhost:8765",
                "http://127.0.0.1:8765",
                "http://[::1]:8765"
            ]
        );
        let remote: SocketAddr = "[2001:db8::5]:9000".parse().unwrap();
        assert!(own_origins(remote).contains(&"http://[2001:db8::5]:9000".to_owned()));
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(own_origins(any).len(), 3);
    }

    #[test]
    fn shared_short_or_missing_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE);
        std::fs::write(&path, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_token(None, dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("readable by others"), "{err}");
        assert!(load_token(Some("short".into()), dir.path(), true).is_err());
        assert!(load_token(Some("has a space in it!!".into()), dir.path(), true).is_err());
        let empty = tempfile::tempdir().unwrap();
        let err = load_token(None, empty.path(), false).unwrap_err();
        assert!(err.to_string().contains("remote bind"), "{err}");
        assert!(!empty.path().join(TOKEN_FILE).exists());
    }
}
