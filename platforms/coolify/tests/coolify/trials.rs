//! The platform conformance trials for Coolify, over a scripted host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kastell_core::memory::Reply;
use kastell_core::types::ArtifactFormat;
use kastell_testkit::platform::{ScriptedFixture, tar_archive};

const ENV: &[u8] = b"APP_ID=trial\nAPP_KEY=base64:dHJpYWwta2V5\n";

fn fixture() -> ScriptedFixture {
    let tar = tar_archive(&[
        ("source/.env", ENV),
        ("source/docker-compose.yml", b"services: {}\n"),
    ]);
    ScriptedFixture::new(kastell_coolify::build, &[])
        .reply(
            "docker inspect 'coolify'",
            Reply::ok("ghcr.io/coollabsio/coolify:4.0.0-beta.420\n"),
        )
        .reply("docker exec 'coolify-db' pg_dump", Reply::ok("PGDMP dump"))
        .reply("docker exec 'coolify-db' pg_isready", Reply::ok(""))
        // The apps' tables: none (a host without apps).
        .reply("docker exec 'coolify-db' psql -At", Reply::ok(""))
        .reply("docker exec -i 'coolify-db' pg_restore", Reply::ok(""))
        .reply(
            "d='/data/coolify'",
            Reply::ok("source/.env\nsource/docker-compose.yml\nsource/docker-compose.prod.yml\n"),
        )
        .reply("printf", Reply::ok(tar))
        .reply("tar -C '/data/coolify' -xf -", Reply::ok(""))
        .reply("tar -C '/data/coolify' --exclude=", Reply::ok(""))
        .reply("f='/data/coolify/source/.env'; if", Reply::ok(ENV))
        .reply("f='/data/coolify/source/.env'; t=", Reply::ok(""))
        .reply("cd '/data/coolify/source' && docker compose", Reply::ok(""))
        .version("4.0.0-beta.420")
        .formats(&[ArtifactFormat::PgCustom, ArtifactFormat::Tar])
        .read_only(&["docker inspect "])
        .mutating(&["cd ", "set -eu", "tar ", "docker exec -i", "f="])
        .backup_command("docker exec 'coolify-db' pg_dump")
}

kastell_testkit::all_platform_trials!(fixture);

#[test]
fn registers_under_its_id() {
    kastell_testkit::platform::assert_registers_under(
        kastell_coolify::register,
        "coolify",
        "Coolify",
    );
}

#[tokio::test]
async fn uses_the_documented_commands() {
    let f = fixture();
    let t = kastell_testkit::platform::PlatformFixture::transport(&f);
    let p = kastell_testkit::platform::PlatformFixture::platform(&f);
    p.stop().await.unwrap();
    p.start().await.unwrap();
    let compose = "cd '/data/coolify/source' && docker compose -f docker-compose.yml -f docker-compose.prod.yml";
    assert_eq!(
        t.commands(),
        vec![format!("{compose} stop"), format!("{compose} up -d")]
    );
    let update = kastell_paas::commands::update(&kastell_coolify::SPEC).unwrap();
    assert!(
        update
            .as_str()
            .contains("curl -fsSL 'https://cdn.coollabs.io/coolify/install.sh'")
    );
    assert!(update.as_str().ends_with("bash \"$d/install.sh\""));
}
