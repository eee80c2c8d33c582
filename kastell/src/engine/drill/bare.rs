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

use std::collections::BTreeSet;
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

/// The check of `validator` that never ran because of `refusals`: failed
/// when the configuration would load code here or climbs out of the
/// archive with `..`; skipped when its only trouble is files outside the
/// archive (a stock Debian nginx's `modules-enabled` symlinks into
/// `/usr/share`), which only the server has, so it cannot be validated
/// here. Either way it names each refusal.
fn refused(validator: &str, refusals: &[Refusal]) -> DrillCheck {
    let listed: Vec<String> = refusals.iter().take(5).map(ToString::to_string).collect();
    let more = refusals.len().saturating_sub(listed.len());
    let named = format!(
        "{}{}",
        listed.join("; "),
        if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        }
    );
    if refusals.iter().all(|r| r.outside) {
        return DrillCheck::skipped(
            validator,
            &format!(
                "not run: the configuration names files outside the archive, which only the \
                 server has and this machine must not read: {named}"
            ),
        );
    }
    DrillCheck::ran(
        validator,
        false,
        format!("refused before {validator} ran: {named}"),
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
            directive: String::new(),
            outside: true,
            why,
        }),
    }
}

/// One validator of one configuration.
struct Validator {
    /// The check's name (`sshd -t`).
    name: &'static str,
    /// The program (`sshd`).
    program: &'static str,
    /// The archive's directory, mounted where the server has it
    /// (`etc/ssh` at `/etc/ssh`).
    dir: &'static str,
    /// The configuration inside it, as the server names it.
    config: &'static str,
}

const SSHD: Validator = Validator {
    name: "sshd -t",
    program: "sshd",
    dir: "etc/ssh",
    config: "/etc/ssh/sshd_config",
};

const NGINX: Validator = Validator {
    name: "nginx -t",
    program: "nginx",
    dir: "etc/nginx",
    config: "/etc/nginx/nginx.conf",
};

/// Where a validator stands before it runs.
enum Ready<'s> {
    /// The archive holds no such configuration: no check.
    Absent,
    /// Refused or skipped: the check, already decided.
    Decided(DrillCheck),
    /// Screened, installed and confinable.
    Run {
        view: View,
        program: PathBuf,
        sandbox: &'s Sandbox,
    },
}

impl<'s> Ready<'s> {
    /// What to run, or the check already decided (`None` when there is no
    /// such configuration).
    fn into_run(self) -> std::result::Result<(View, PathBuf, &'s Sandbox), Option<DrillCheck>> {
        match self {
            Ready::Absent => Err(None),
            Ready::Decided(check) => Err(Some(check)),
            Ready::Run {
                view,
                program,
                sandbox,
            } => Ok((view, program, sandbox)),
        }
    }
}

impl Validator {
    /// The steps every validator takes before it runs: the archive's
    /// directory and configuration found inside the tree, `screen` and
    /// the symlinks leading out of it refused, the validator installed,
    /// the sandbox working.
    fn ready<'s>(
        &self,
        root: &Path,
        links: &[String],
        confinement: &'s mut Confinement<'_>,
        screen: impl FnOnce(&View, &Path) -> Vec<Refusal>,
    ) -> Ready<'s> {
        let config = Path::new(self.config);
        let view = match view(root, self.dir) {
            Ok(Some(view)) => view,
            Ok(None) => return Ready::Absent,
            Err(refusal) => return Ready::Decided(refused(self.name, &[refusal])),
        };
        match view.resolve(config) {
            Ok(Some(p)) if p.is_file() => {}
            Ok(_) => return Ready::Absent,
            Err(why) => {
                let refusal = Refusal {
                    file: self.config.to_owned(),
                    line: 0,
                    directive: String::new(),
                    outside: super::screen::only_outside(&why),
                    why,
                };
                return Ready::Decided(refused(self.name, &[refusal]));
            }
        }
        let mut refusals = screen(&view, config);
        refusals.extend(screen::escaping_links(&view, links));
        if !refusals.is_empty() {
            return Ready::Decided(refused(self.name, &refusals));
        }
        let Some(program) = confine::installed(self.program) else {
            return Ready::Decided(DrillCheck::skipped(
                self.name,
                &format!("{} is not installed here", self.program),
            ));
        };
        match confinement.get() {
            Ok(sandbox) => Ready::Run {
                view,
                program,
                sandbox,
            },
            Err(why) => Ready::Decided(DrillCheck::skipped(self.name, why)),
        }
    }

    /// Runs `spec` in `sandbox` and words the verdict.
    fn verdict(&self, sandbox: &Sandbox, spec: &Spec) -> Result<DrillCheck> {
        let ran = sandbox.run(spec)?;
        let file = self.config.trim_start_matches('/');
        let detail = if ran.passed {
            format!("{file} is valid")
        } else {
            format!("{file} is refused: {}", plain(ran.text.trim()))
        };
        Ok(DrillCheck::ran(self.name, ran.passed, detail))
    }
}

/// A throwaway host key for `sshd -t` in `scratch`, readable by the
/// validator; `Err(why)` when ssh-keygen failed.
fn host_key(scratch: &Path) -> Result<std::result::Result<PathBuf, String>> {
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
        return Ok(Err(format!(
            "no throwaway host key could be made: {}",
            plain(String::from_utf8_lossy(&made.stderr).trim())
        )));
    }
    if kastell_pg::is_root() {
        std::os::unix::fs::lchown(&key, Some(confine::NOBODY), Some(confine::NOBODY))
            .map_err(|e| Error::io("handing the throwaway host key to the validator", e))?;
    }
    Ok(Ok(key))
}

fn sshd_check(
    root: &Path,
    links: &[String],
    scratch: &Path,
    confinement: &mut Confinement<'_>,
) -> Result<Option<DrillCheck>> {
    let (view, program, sandbox) = match SSHD
        .ready(root, links, confinement, screen::sshd)
        .into_run()
    {
        Ok(run) => run,
        Err(decided) => return Ok(decided),
    };
    let key = match host_key(scratch)? {
        Ok(key) => key,
        Err(why) => return Ok(Some(DrillCheck::skipped(SSHD.name, &why))),
    };
    let spec = Spec {
        binds: vec![(view.host, "/etc/ssh".into()), (key, HOST_KEY.into())],
        program,
        args: ["-t", "-f", SSHD.config, "-h", HOST_KEY]
            .map(Into::into)
            .to_vec(),
        ..Spec::default()
    };
    SSHD.verdict(sandbox, &spec).map(Some)
}

fn nginx_check(
    root: &Path,
    links: &[String],
    confinement: &mut Confinement<'_>,
) -> Result<Option<DrillCheck>> {
    let mut writes = BTreeSet::new();
    let screen = |view: &View, config: &Path| {
        let screened = screen::nginx(view, config);
        writes = screened.writable;
        screened.refusals
    };
    let (view, program, sandbox) = match NGINX.ready(root, links, confinement, screen).into_run() {
        Ok(run) => run,
        Err(decided) => return Ok(decided),
    };
    // Where Debian's nginx writes by default (its error log before the
    // configuration is read, its temporary paths), and where this
    // configuration writes: scratch space inside the sandbox.
    let mut writable: BTreeSet<String> = ["/run", "/var/log/nginx", "/var/lib/nginx"]
        .map(String::from)
        .into();
    writable.extend(writes.into_iter().take(32));
    let spec = Spec {
        binds: vec![(view.host, "/etc/nginx".into())],
        writable: writable.into_iter().collect(),
        bind_ports: true,
        program,
        args: ["-t", "-q", "-c", NGINX.config, "-p", "/etc/nginx/"]
            .map(Into::into)
            .to_vec(),
    };
    NGINX.verdict(sandbox, &spec).map(Some)
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
                    .map(|n| crate::state::store::display_safe(n))
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
        artifact: crate::state::store::display_safe(&record.name),
        target: "a temporary directory".into(),
        checks,
        duration_ms: millis_since(started),
        record: record.name.clone(),
        rows: Default::default(),
    })
}
