//! The drill of a configuration archive (a bare server's backup): unpacked
//! into a temporary directory here, then the configurations it holds that
//! this machine can validate are validated on the unpacked copy:
//! `sshd -t` for `etc/ssh/sshd_config` (with a throwaway host key) and
//! `nginx -t` for `etc/nginx/nginx.conf`.
//!
//! The archive is hostile input. Each configuration is screened first
//! ([`super::screen`]): one that would load code here or name a file
//! outside the archive fails its check, and its validator never runs.
//! A validator runs only confined ([`super::confine`]), seeing the
//! archive's directory where the server has it (`/etc/nginx`), never as
//! root. A validator that is not installed, or that cannot be confined
//! here, is reported as skipped, never as passed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kastell_core::types::{ArtifactRecord, ArtifactSource};
use kastell_core::{Error, Result};

use super::confine::{self, Sandbox, Spec};
use super::screen::{self, Refusal};
use super::tree::{self, View};
use super::{ArtifactDrill, DrillCheck, millis_since, plain, unpack_tar};

/// Where the throwaway host key is inside the sandbox.
const HOST_KEY: &str = "/kastell/drill_host_key";

/// The sandbox, built once per archive and only when a validator is to run.
struct Confinement<'a> {
    scratch: &'a Path,
    probed: Option<std::result::Result<Sandbox, String>>,
}

impl Confinement<'_> {
    fn get(&mut self) -> std::result::Result<&Sandbox, &str> {
        let scratch = self.scratch;
        self.probed
            .get_or_insert_with(|| Sandbox::probe(scratch))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// A failed check naming each refusal, before `validator` ran.
fn refused(validator: &str, refusals: &[Refusal]) -> DrillCheck {
    let listed: Vec<String> = refusals.iter().take(5).map(ToString::to_string).collect();
    let more = refusals.len().saturating_sub(listed.len());
    DrillCheck::ran(
        validator,
        false,
        format!(
            "refused before {validator} ran: {}{}",
            listed.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ),
    )
}

/// The archive's `relative` directory (`etc/ssh`) as a view mounted where
/// the server has it, or a refusal when it leads out of the tree.
fn view(root: &Path, relative: &str) -> std::result::Result<Option<View>, Refusal> {
    match tree::real_dir(root, relative) {
        Ok(Some(host)) => Ok(Some(View {
            mounted_at: PathBuf::from(format!("/{relative}")),
            host,
        })),
        Ok(None) => Ok(None),
        Err(why) => Err(Refusal {
            file: format!("/{relative}"),
            line: 0,
            directive: "(directory)".into(),
            why,
        }),
    }
}

fn sshd_check(
    root: &Path,
    links: &[String],
    scratch: &Path,
    confinement: &mut Confinement<'_>,
) -> Result<Option<DrillCheck>> {
    const NAME: &str = "sshd -t";
    let config = Path::new("/etc/ssh/sshd_config");
    let view = match view(root, "etc/ssh") {
        Ok(Some(view)) => view,
        Ok(None) => return Ok(None),
        Err(refusal) => return Ok(Some(refused(NAME, &[refusal]))),
    };
    match view.resolve(config) {
        Ok(Some(p)) if p.is_file() => {}
        Ok(_) => return Ok(None),
        Err(why) => return Ok(Some(refused(NAME, &[refusal_of(config, why)]))),
    }
    let mut refusals = screen::sshd(&view, config);
    refusals.extend(screen::escaping_links(&view, links));
    if !refusals.is_empty() {
        return Ok(Some(refused(NAME, &refusals)));
    }
    let Some(sshd) = confine::installed("sshd") else {
        return Ok(Some(DrillCheck::skipped(
            NAME,
            "sshd is not installed here",
        )));
    };
    let sandbox = match confinement.get() {
        Ok(sandbox) => sandbox,
        Err(why) => return Ok(Some(DrillCheck::skipped(NAME, why))),
    };
    let keys = scratch.join("keys");
    std::fs::create_dir(&keys).map_err(|e| Error::io("creating the drill's key directory", e))?;
    let key = keys.join("host_key");
    let made = kastell_core::env::allowlisted_command("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("running ssh-keygen", e))?;
    if !made.status.success() {
        return Ok(Some(DrillCheck::skipped(
            NAME,
            &format!(
                "no throwaway host key could be made: {}",
                plain(String::from_utf8_lossy(&made.stderr).trim())
            ),
        )));
    }
    if kastell_pg::is_root() {
        std::os::unix::fs::lchown(&key, Some(confine::NOBODY), Some(confine::NOBODY))
            .map_err(|e| Error::io("handing the throwaway host key to the validator", e))?;
    }
    let spec = Spec {
        binds: vec![
            (view.host.clone(), "/etc/ssh".into()),
            (key, HOST_KEY.into()),
        ],
        program: sshd,
        args: ["-t", "-f", "/etc/ssh/sshd_config", "-h", HOST_KEY]
            .map(Into::into)
            .to_vec(),
        ..Spec::default()
    };
    let ran = sandbox.run(&spec)?;
    let detail = if ran.passed {
        "etc/ssh/sshd_config is valid".to_owned()
    } else {
        format!("etc/ssh/sshd_config is refused: {}", plain(ran.text.trim()))
    };
    Ok(Some(DrillCheck::ran(NAME, ran.passed, detail)))
}

fn refusal_of(config: &Path, why: String) -> Refusal {
    Refusal {
        file: config.display().to_string(),
        line: 0,
        directive: "(file)".into(),
        why,
    }
}

fn nginx_check(
    root: &Path,
    links: &[String],
    confinement: &mut Confinement<'_>,
) -> Result<Option<DrillCheck>> {
    const NAME: &str = "nginx -t";
    let config = Path::new("/etc/nginx/nginx.conf");
    let view = match view(root, "etc/nginx") {
        Ok(Some(view)) => view,
        Ok(None) => return Ok(None),
        Err(refusal) => return Ok(Some(refused(NAME, &[refusal]))),
    };
    match view.resolve(config) {
        Ok(Some(p)) if p.is_file() => {}
        Ok(_) => return Ok(None),
        Err(why) => return Ok(Some(refused(NAME, &[refusal_of(config, why)]))),
    }
    let mut screened = screen::nginx(&view, config);
    screened
        .refusals
        .extend(screen::escaping_links(&view, links));
    if !screened.refusals.is_empty() {
        return Ok(Some(refused(NAME, &screened.refusals)));
    }
    let Some(nginx) = confine::installed("nginx") else {
        return Ok(Some(DrillCheck::skipped(
            NAME,
            "nginx is not installed here",
        )));
    };
    let sandbox = match confinement.get() {
        Ok(sandbox) => sandbox,
        Err(why) => return Ok(Some(DrillCheck::skipped(NAME, why))),
    };
    // Where Debian's nginx writes by default (its error log before the
    // configuration is read, its temporary paths), and where this
    // configuration writes: scratch space inside the sandbox.
    let mut writable: Vec<String> = ["/run", "/var/log/nginx", "/var/lib/nginx"]
        .map(String::from)
        .to_vec();
    writable.extend(screened.writable.into_iter().take(32));
    writable.sort();
    writable.dedup();
    let spec = Spec {
        binds: vec![(view.host.clone(), "/etc/nginx".into())],
        writable,
        bind_ports: true,
        program: nginx,
        args: [
            "-t",
            "-q",
            "-c",
            "/etc/nginx/nginx.conf",
            "-p",
            "/etc/nginx/",
        ]
        .map(Into::into)
        .to_vec(),
    };
    let ran = sandbox.run(&spec)?;
    let detail = if ran.passed {
        "etc/nginx/nginx.conf is valid".to_owned()
    } else {
        format!(
            "etc/nginx/nginx.conf is refused: {}",
            plain(ran.text.trim())
        )
    };
    Ok(Some(DrillCheck::ran(NAME, ran.passed, detail)))
}

/// Drills the archive `record`: unpack, screen, then validate what can be.
pub(super) fn drill(source: &dyn ArtifactSource, record: &ArtifactRecord) -> Result<ArtifactDrill> {
    let started = Instant::now();
    let scratch = tempfile::Builder::new()
        .prefix("kastell-drill-")
        .tempdir()
        .map_err(|e| Error::io("creating the drill directory", e))?;
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(|e| Error::io("creating the drill directory", e))?;
    let unpacked = unpack_tar(source, record, &root)?;
    let tidied = match &unpacked {
        Ok(()) => {
            Some(tree::tidy(&root).map_err(|e| Error::io("checking the unpacked archive", e))?)
        }
        Err(_) => None,
    };
    let mut checks = vec![DrillCheck::ran(
        "unpack",
        unpacked.is_ok(),
        match (&unpacked, &tidied) {
            (Ok(()), Some(t)) if t.removed.is_empty() => format!("{} files unpacked", t.files),
            (Ok(()), Some(t)) => format!(
                "{} files unpacked; {} device files, FIFOs or sockets removed unread ({})",
                t.files,
                t.removed.len(),
                t.removed
                    .iter()
                    .take(3)
                    .map(|n| crate::store::display_safe(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Err(why), _) => format!("tar could not unpack it: {}", plain(why)),
            (Ok(()), None) => "unpacked".to_owned(),
        },
    )];
    if unpacked.is_ok() {
        if kastell_pg::is_root() {
            tree::give_to(&root, confine::NOBODY, confine::NOBODY)
                .map_err(|e| Error::io("handing the unpacked archive to the validators", e))?;
        }
        let mut confinement = Confinement {
            scratch: scratch.path(),
            probed: None,
        };
        let links = tidied.map(|t| t.symlinks).unwrap_or_default();
        checks.extend(sshd_check(&root, &links, scratch.path(), &mut confinement)?);
        checks.extend(nginx_check(&root, &links, &mut confinement)?);
    }
    Ok(ArtifactDrill {
        artifact: crate::store::display_safe(&record.name),
        target: "a temporary directory".into(),
        checks,
        duration_ms: millis_since(started),
    })
}
