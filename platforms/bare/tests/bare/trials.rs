//! The generic platform conformance trials, for the bare platform over
//! scripted replies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kastell_core::memory::Reply;
use kastell_core::types::ArtifactFormat;
use kastell_testkit::platform::ScriptedFixture;

/// The start of the backup's path listing and of its tar, for the default
/// paths under `/`.
const LIST: &str = "set -eu; set -f; IFS='\n'; root='/'; list='etc/nginx\netc/ssh/sshd_config\netc/ufw\netc/fail2ban\netc/crontab\netc/apt/apt.conf.d/50unattended-upgrades'; cd";
const TAR: &str = "set -eu; set -f; IFS='\n'; root='/'; list='etc/nginx\netc/ssh/sshd_config\netc/crontab'; set --";

fn fixture() -> ScriptedFixture {
    ScriptedFixture::new(kastell_bare::build, &[])
        .reply(
            "cat -- '/etc/os-release'",
            Reply::ok(
                "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\nKASTELL_UNAME Linux 6.1.0\n",
            ),
        )
        .reply(
            "if command -v systemctl",
            Reply::ok("KASTELL_STATE running\n"),
        )
        .reply(
            LIST,
            Reply::ok(
                "present etc/nginx\npresent etc/ssh/sshd_config\nmissing etc/ufw\n\
                 missing etc/fail2ban\npresent etc/crontab\n\
                 missing etc/apt/apt.conf.d/50unattended-upgrades\n",
            ),
        )
        .reply(TAR, Reply::ok(b"a tar archive".to_vec()))
        .reply(
            "set -eu\nroot='/'",
            Reply::ok(
                "KASTELL_STEP unpack ok 3 files\n\
                 KASTELL_STEP validate-sshd ok sshd -t accepted the restored sshd_config\n\
                 KASTELL_STEP switch ok restored into /\n\
                 KASTELL_STEP reload-ssh skipped configuration unchanged\n",
            ),
        )
        .reply(
            "apt-get -s",
            Reply::ok("Inst curl [1] (2 Debian:12/stable [amd64])\n"),
        )
        .reply("if [ -e '/var/run/reboot-required' ]", Reply::ok("no\n"))
        .reply("DEBIAN_FRONTEND=", Reply::ok("done\n"))
        .version("Debian GNU/Linux 12 (bookworm)")
        .formats(&[ArtifactFormat::Tar])
        .read_only(&[
            "cat -- ",
            "if command -v systemctl",
            "apt-get -s",
            "if [ -e ",
        ])
        .mutating(&["DEBIAN_FRONTEND=", "set -eu\nroot="])
        .backup_command(TAR)
}

kastell_testkit::all_platform_trials!(fixture);
