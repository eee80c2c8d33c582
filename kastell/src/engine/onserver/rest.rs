//! HTTP/2 requests to the restic REST server a server's own SSH login is
//! forced into, sent from the server. kastell runs the server's `ssh`
//! (with the server's key, which never leaves it) over its own SSH
//! session and speaks HTTP/2 with prior knowledge, which is what `rclone
//! serve restic --stdio` serves and restic's `rclone:` backend speaks,
//! through that command's standard input and output.
//!
//! Only the answers' status codes are read; no header or body of theirs
//! is kept, so nothing the storage sends is shown or run.

use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::Bytes;
use kastell_core::{Error, ErrorKind, Result};

use super::remote::Root;

/// How long the requests may take once the command runs.
const TALK_TIMEOUT: Duration = Duration::from_secs(45);

/// One request: a method on a path of the served directory, with an
/// optional body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// `POST`, `DELETE`, `GET`...
    pub method: &'static str,
    /// The path, from the served directory's root (`/kastell-canary`).
    pub path: &'static str,
    /// The body of a `POST`.
    pub body: Option<&'static [u8]>,
}

/// How one conversation went.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// Each request's answer, in order (fewer when the conversation
    /// broke off: [`Self::broken`] says why).
    pub statuses: Vec<u16>,
    /// Why the conversation broke off, if it did.
    pub broken: Option<String>,
    /// The command's exit status.
    pub status: i32,
    /// The last lines of the command's standard error, control characters
    /// removed (the storage's and `ssh`'s words: untrusted).
    pub stderr: String,
}

/// Runs `script` on the server (it must end in the command whose standard
/// input and output carry HTTP/2, such as the server's `ssh` to the
/// storage), sends `requests` one after the other through it and returns
/// their status codes with how the command ended. Fails only when the
/// command could not be run at all.
pub(crate) async fn exchange(
    root: Root<'_>,
    script: &str,
    requests: &[Request],
) -> Result<Exchange> {
    let pipe = |what: &str, e: std::io::Error| Error::io(format!("making the {what} pipe"), e);
    // Two socket pairs: what kastell writes reaches the command's stdin
    // (read without blocking by the transport), what the command prints
    // comes back to kastell.
    let (ours_in, theirs_in) = UnixStream::pair().map_err(|e| pipe("request", e))?;
    let (ours_out, theirs_out) = UnixStream::pair().map_err(|e| pipe("answer", e))?;
    for (side, what) in [
        (&theirs_in, "request"),
        (&ours_in, "request"),
        (&ours_out, "answer"),
    ] {
        side.set_nonblocking(true).map_err(|e| pipe(what, e))?;
    }
    let writer = tokio::net::UnixStream::from_std(ours_in).map_err(|e| pipe("request", e))?;
    let reader = tokio::net::UnixStream::from_std(ours_out).map_err(|e| pipe("answer", e))?;
    let io = tokio::io::join(reader, writer);
    let run = root.stream(
        script,
        Box::new(theirs_in),
        Box::new(Answers(Some(theirs_out))),
    );
    let talk = async move {
        let mut statuses = Vec::new();
        let broken = tokio::time::timeout(TALK_TIMEOUT, talk(io, requests, &mut statuses))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {}s", TALK_TIMEOUT.as_secs())))
            .err();
        (statuses, broken)
    };
    let (ran, (statuses, broken)) = tokio::join!(run, talk);
    let ran = ran?;
    Ok(Exchange {
        statuses,
        broken,
        status: ran.status,
        stderr: last_lines(&ran.stderr),
    })
}

/// The command's standard output on its way to kastell's HTTP/2 client:
/// once the client has hung up (its requests answered, or given up),
/// what the storage still sends (a closing frame) is dropped instead of
/// failing the command.
struct Answers(Option<UnixStream>);

impl std::io::Write for Answers {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(stream) = self.0.as_mut() {
            match stream.write(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    self.0 = None;
                }
                other => return other,
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.as_mut() {
            Some(stream) => stream.flush(),
            None => Ok(()),
        }
    }
}

/// Sends `requests` over `io` and pushes each answer's status; the
/// connection is closed (and the command's stdin with it) on return.
async fn talk(
    io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    requests: &[Request],
    statuses: &mut Vec<u16>,
) -> std::result::Result<(), String> {
    let (mut client, connection) = h2::client::handshake(io)
        .await
        .map_err(|e| format!("no HTTP/2 answer: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    for request in requests {
        client = client
            .ready()
            .await
            .map_err(|e| format!("the connection closed: {e}"))?;
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(format!("http://localhost{}", request.path));
        if let Some(body) = request.body {
            builder = builder.header("content-length", body.len());
        }
        let built = builder
            .body(())
            .map_err(|e| format!("building the request: {e}"))?;
        let (answer, mut stream) = client
            .send_request(built, request.body.is_none())
            .map_err(|e| format!("sending {} {}: {e}", request.method, request.path))?;
        if let Some(body) = request.body {
            stream
                .send_data(Bytes::from_static(body), true)
                .map_err(|e| format!("sending {} {}: {e}", request.method, request.path))?;
        }
        let answer = answer
            .await
            .map_err(|e| format!("{} {} got no answer: {e}", request.method, request.path))?;
        statuses.push(answer.status().as_u16());
    }
    drop(client);
    let _ = driver.await;
    Ok(())
}

/// The last lines (at most 600 characters) of `stderr`, each control
/// character but the line break replaced.
fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let clean: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let start = clean.char_indices().rev().nth(599).map_or(0, |(i, _)| i);
    clean[start..].to_owned()
}

/// The error for a conversation that proved nothing.
pub(crate) fn unproven(what: &str, exchange: &Exchange) -> Error {
    let mut message = format!("{what} (the command exited with {})", exchange.status);
    if let Some(why) = &exchange.broken {
        message.push_str(&format!(": {why}"));
    }
    if !exchange.stderr.is_empty() {
        message.push_str(&format!("; it said: {}", exchange.stderr));
    }
    Error::new(ErrorKind::Unavailable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_bounded_and_stripped_of_control_characters() {
        let long = format!("{}\x1b[31mend\r\n", "x".repeat(2000));
        let shown = last_lines(long.as_bytes());
        assert!(shown.chars().count() <= 600, "{}", shown.len());
        assert!(shown.ends_with(" [31mend"), "{shown:?}");
        assert!(!shown.contains('\x1b'));
    }
}
