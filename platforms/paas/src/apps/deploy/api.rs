//! Asking the platform's HTTP API, from the server itself (`curl` against
//! 127.0.0.1 over the transport: nothing is exposed, the credential goes on
//! stdin), to deploy one resource, and reading its answer as hostile input:
//! a status line kastell wrote last, a bounded body parsed as the JSON the
//! endpoint documents, messages shown without control characters.
//!
//! The endpoints (checked against the platforms' sources and API docs):
//! - Coolify: `GET /api/v1/databases/{uuid}/start` answers
//!   `{"message": ...}`; `GET /api/v1/deploy?uuid={uuid}` answers
//!   `{"deployments": [{"message", "resource_uuid", "deployment_uuid"}]}`.
//!   Coolify answers 403 when its API is switched off in its settings.
//! - Dokploy: `POST /api/{kind}.deploy` with `{"{kind}Id": id}`
//!   (`application`, `postgres`, `mysql`, `mariadb`, `mongo`, `redis`),
//!   its tRPC procedures served as REST for API keys. What the mutation
//!   answers could not be confirmed beyond a JSON value (`true` in the
//!   sources read); any JSON is accepted, a non-JSON answer refused.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kastell_core::transport::check_status;
use kastell_core::types::AppDataKind;
use kastell_core::{BoxRead, Error, ErrorKind, PollSchedule, Result};
use serde::Deserialize;

use super::STATUS_MARK;
use super::token::ApiToken;
use crate::apps::commands;
use crate::platform::PaasPlatform;
use crate::secret::Shared;
use crate::spec::DeployApi;

/// The most of an answer's body kastell reads.
const BODY_MAX: usize = 64 * 1024;
/// The most of a server's message an error shows.
const MESSAGE_MAX: usize = 200;

/// One deploy request: what to ask and of which resource.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: &'static str,
    pub(crate) url: String,
    pub(crate) body: Option<String>,
    /// What the answer must look like.
    pub(crate) expect: Expect,
}

/// The answer an endpoint documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Coolify's `{"message": "..."}` (a database started).
    Message,
    /// Coolify's `{"deployments": [...]}` naming this resource.
    Deployments,
    /// Any JSON value (Dokploy's mutation answer).
    Json,
}

/// The resource kind's word in Dokploy's procedures and tables.
pub(crate) fn dokploy_kind(kind: Option<AppDataKind>) -> &'static str {
    match kind {
        Some(AppDataKind::Postgres) => "postgres",
        Some(AppDataKind::Mysql) => "mysql",
        Some(AppDataKind::Mariadb) => "mariadb",
        Some(AppDataKind::Mongo) => "mongo",
        Some(AppDataKind::Redis) => "redis",
        Some(AppDataKind::Volume) | None => "application",
    }
}

/// The request that deploys the resource `key` (a database of `kind`, or
/// the application when `None`), `id` its Dokploy id.
pub(crate) fn deploy_request(
    api: DeployApi,
    key: &str,
    kind: Option<AppDataKind>,
    id: Option<&str>,
) -> Result<Request> {
    match (api, kind) {
        (DeployApi::Coolify, Some(_)) => Ok(Request {
            method: "GET",
            url: format!("http://127.0.0.1:8000/api/v1/databases/{key}/start"),
            body: None,
            expect: Expect::Message,
        }),
        (DeployApi::Coolify, None) => Ok(Request {
            method: "GET",
            url: format!("http://127.0.0.1:8000/api/v1/deploy?uuid={key}"),
            body: None,
            expect: Expect::Deployments,
        }),
        (DeployApi::Dokploy, _) => {
            let word = dokploy_kind(kind);
            let id = id.ok_or_else(|| Error::unexpected("a Dokploy deploy needs its id"))?;
            Ok(Request {
                method: "POST",
                url: format!("http://127.0.0.1:3000/api/{word}.deploy"),
                body: Some({
                    let mut body = serde_json::Map::new();
                    body.insert(format!("{word}Id"), serde_json::Value::from(id));
                    serde_json::Value::Object(body).to_string()
                }),
                expect: Expect::Json,
            })
        }
        (DeployApi::None, _) => Err(Error::unsupported("no deploy API")),
    }
}

/// `text` as shown in an error: no control characters, at most
/// [`MESSAGE_MAX`] characters.
pub(crate) fn shown(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MESSAGE_MAX)
        .collect()
}

/// Splits what `curl` printed into the status kastell's `-w` wrote last
/// and the body before it. Refuses output without that last line.
pub(crate) fn split_answer(out: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(out);
    let (body, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = last
        .strip_prefix(STATUS_MARK)
        .and_then(|code| code.trim().parse::<u16>().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Corrupt,
                "the platform's API answer has no status kastell can read",
            )
        })?;
    Ok((status, body.to_owned()))
}

/// What Coolify's endpoints answer.
#[derive(Debug, Deserialize)]
struct Deployments {
    deployments: Vec<Deployment>,
}

#[derive(Debug, Deserialize)]
struct Deployment {
    resource_uuid: String,
}

#[derive(Debug, Deserialize)]
struct Message {
    message: String,
}

/// Checks a 2xx answer's body against what `expect` documents for `key`;
/// returns what to tell.
pub(crate) fn check_body(expect: Expect, key: &str, body: &str) -> Result<String> {
    let corrupt = |e: String| {
        Error::new(
            ErrorKind::Corrupt,
            format!(
                "the platform's API answered the deploy of {key} with what kastell did not ask for: {e}"
            ),
        )
    };
    match expect {
        Expect::Message => {
            let m: Message = serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
            Ok(shown(&m.message))
        }
        Expect::Deployments => {
            let d: Deployments = serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
            if d.deployments.iter().any(|x| x.resource_uuid == key) {
                Ok("deployment queued".to_owned())
            } else {
                Err(corrupt("no deployment of this resource".to_owned()))
            }
        }
        Expect::Json => {
            serde_json::from_str::<serde_json::Value>(body).map_err(|e| corrupt(e.to_string()))?;
            Ok("deploy accepted".to_owned())
        }
    }
}

/// The message of a refusal: the JSON `message` when there is one, else
/// the body, shown without control characters.
fn refusal_message(body: &str) -> String {
    serde_json::from_str::<Message>(body)
        .map(|m| shown(&m.message))
        .unwrap_or_else(|_| shown(body))
}

/// `curl`'s exit status when it could not connect (the platform is still
/// starting).
const CURL_COULDNT_CONNECT: i32 = 7;

impl PaasPlatform {
    /// Sends `request` with `token`, retrying while the platform is still
    /// starting (no connection, 502/503) until `db_ready_timeout_secs`;
    /// `what` names the app for errors. Returns what the answer said.
    pub(crate) async fn api_call(
        &self,
        request: &Request,
        token: &ApiToken,
        key: &str,
        what: &str,
    ) -> Result<String> {
        let started = Instant::now();
        let schedule = PollSchedule::new(Duration::from_millis(500), Duration::from_secs(5));
        let mut waits = schedule.waits();
        let timeout = self.settings.service_timeout;
        let command = commands::api_request(
            request.method,
            &request.url,
            request.body.as_deref(),
            timeout.as_secs().max(1),
        )?;
        loop {
            let stdout = Arc::new(Mutex::new(Vec::new()));
            let stdin: BoxRead = Box::new(Cursor::new(token.header_line()));
            let out = self
                .transport
                .exec_streaming(
                    &command,
                    Some(stdin),
                    Box::new(Shared::bounded(stdout.clone(), BODY_MAX + 64)),
                    timeout,
                )
                .await?;
            let bytes = stdout.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let last = if out.status == CURL_COULDNT_CONNECT {
                format!(
                    "{} does not answer on the server yet",
                    self.spec.display_name
                )
            } else {
                check_status(&command, out.status, &out.stderr)
                    .map_err(|e| e.or_hint(format!("Deploy {what} in {} by hand, then restore it alone (backup restore --app {key})", self.spec.display_name)))?;
                let (status, body) = split_answer(&bytes)?;
                match status {
                    200..=299 => return check_body(request.expect, key, &body),
                    502 | 503 => format!("HTTP {status}: {}", refusal_message(&body)),
                    _ => {
                        let kind = match status {
                            401 | 403 => ErrorKind::PermissionDenied,
                            404 => ErrorKind::NotFound,
                            _ => ErrorKind::CommandFailed,
                        };
                        return Err(Error::new(
                            kind,
                            format!(
                                "{} refused to deploy {what}: HTTP {status}: {}",
                                self.spec.display_name,
                                refusal_message(&body)
                            ),
                        )
                        .with_hint(format!(
                            "Deploy {what} in {} by hand, then restore its data alone (backup \
                             restore --app {key}){}",
                            self.spec.display_name,
                            if status == 403 && self.spec.apps.deploy == DeployApi::Coolify {
                                "; a 403 may mean Coolify's API is switched off in its settings"
                            } else {
                                ""
                            }
                        )));
                    }
                }
            };
            let wait = waits.next().unwrap_or(schedule.max);
            if started.elapsed() + wait > self.settings.db_ready_timeout {
                return Err(Error::timeout(format!(
                    "could not ask {} to deploy {what} within {}s: {last}",
                    self.spec.display_name,
                    self.settings.db_ready_timeout.as_secs()
                ))
                .with_hint(format!(
                    "Check that {} runs on the server (`docker ps`), or raise \
                     db_ready_timeout_secs",
                    self.spec.display_name
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_the_last_line_kastell_wrote() {
        let out = format!("{{\"message\":\"ok\"}}\n{STATUS_MARK}200");
        assert_eq!(
            split_answer(out.as_bytes()).unwrap(),
            (200, "{\"message\":\"ok\"}".into())
        );
        // A body that forges a status line is still the body.
        let out = format!("x\n{STATUS_MARK}200\n{STATUS_MARK}500");
        assert_eq!(split_answer(out.as_bytes()).unwrap().0, 500);
        assert!(split_answer(b"no status").is_err());
        assert!(split_answer(format!("\n{STATUS_MARK}abc").as_bytes()).is_err());
    }

    #[test]
    fn answers_are_parsed_as_documented() {
        let ok =
            r#"{"deployments":[{"message":"queued","resource_uuid":"k1","deployment_uuid":"d"}]}"#;
        assert!(check_body(Expect::Deployments, "k1", ok).is_ok());
        assert!(check_body(Expect::Deployments, "k2", ok).is_err());
        assert!(check_body(Expect::Deployments, "k1", "<html>").is_err());
        let m = check_body(Expect::Message, "k1", "{\"message\":\"go\\u001b[31m\"}").unwrap();
        assert_eq!(m, "go[31m", "no control characters");
        assert!(check_body(Expect::Json, "k1", "true").is_ok());
        assert!(check_body(Expect::Json, "k1", "ok").is_err());
    }

    #[test]
    fn requests_name_the_resource_and_never_a_token() {
        let r = deploy_request(DeployApi::Coolify, "k1", None, None).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8000/api/v1/deploy?uuid=k1");
        let r = deploy_request(DeployApi::Coolify, "k1", Some(AppDataKind::Mysql), None).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:8000/api/v1/databases/k1/start");
        let r = deploy_request(
            DeployApi::Dokploy,
            "k1",
            Some(AppDataKind::Postgres),
            Some("i\"d"),
        )
        .unwrap();
        assert_eq!(r.url, "http://127.0.0.1:3000/api/postgres.deploy");
        assert_eq!(r.body.as_deref(), Some(r#"{"postgresId":"i\"d"}"#));
        assert!(deploy_request(DeployApi::Dokploy, "k1", None, None).is_err());
    }
}
