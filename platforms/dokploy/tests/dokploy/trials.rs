//! The platform conformance trials for Dokploy, over a scripted host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kastell_core::memory::Reply;
use kastell_core::types::ArtifactFormat;
use kastell_testkit::platform::ScriptedFixture;

const DB: &str = "4d1f0c0ffee5eed0000000000000000000000000000000000000000000000000";
const APP: &str = "a11ce0c0ffee5eed000000000000000000000000000000000000000000000000";
const SPEC_JSON: &str = r#"{"Image":"dokploy/dokploy:v0.22.3","Env":["NODE_ENV=production"],"Secrets":[{"File":{"Name":"dokploy-auth-secret"},"SecretID":"s3cr3tid","SecretName":"dokploy-auth-secret"}]}"#;

fn fixture() -> ScriptedFixture {
    ScriptedFixture::new(kastell_dokploy::build, &[])
        .reply(
            "docker inspect 'dokploy'",
            Reply::ok("dokploy/dokploy:v0.22.3\n"),
        )
        .reply(
            "docker ps -qf 'name=dokploy-postgres' --no-trunc | head -1",
            Reply::ok(format!("{DB}\n")),
        )
        .reply(
            &format!("docker exec '{DB}' pg_dump"),
            Reply::ok("PGDMP dump"),
        )
        .reply(&format!("docker exec '{DB}' pg_isready"), Reply::ok(""))
        // The apps' tables: none (a host without apps).
        .reply(&format!("docker exec '{DB}' psql -At"), Reply::ok(""))
        .reply(&format!("docker exec -i '{DB}' pg_restore"), Reply::ok(""))
        .reply("d='/etc/dokploy'", Reply::ok(".\n"))
        .reply("printf", Reply::ok("tar bytes"))
        .reply("tar -C '/etc/dokploy' -xf -", Reply::ok(""))
        .reply("docker service scale ", Reply::ok(""))
        .reply("docker service inspect 'dokploy'", Reply::ok(SPEC_JSON))
        .reply(
            "docker ps -q --no-trunc --filter 'label=com.docker.swarm.service.name=dokploy'",
            Reply::ok(format!("{APP}\n")),
        )
        .reply(
            &format!("docker exec '{APP}' cat '/run/secrets/dokploy-auth-secret'"),
            Reply::ok("trial-secret"),
        )
        .reply(
            "docker secret ls",
            Reply::ok("s3cr3tid dokploy-auth-secret\n"),
        )
        .reply("docker secret ", Reply::ok("n3wid\n"))
        .reply("docker service update ", Reply::ok("dokploy\n"))
        .version("v0.22.3")
        .formats(&[
            ArtifactFormat::PgCustom,
            ArtifactFormat::Tar,
            ArtifactFormat::Raw,
        ])
        .read_only(&["docker inspect ", "docker ps "])
        .mutating(&[
            "docker service",
            "docker secret",
            "set -eu",
            "tar ",
            "docker exec -i",
        ])
        .backup_command(&format!("docker exec '{DB}' pg_dump"))
}

kastell_testkit::all_platform_trials!(fixture);

#[test]
fn registers_under_its_id() {
    kastell_testkit::platform::assert_registers_under(
        kastell_dokploy::register,
        "dokploy",
        "Dokploy",
    );
}

#[tokio::test]
async fn uses_the_documented_commands() {
    let f = fixture();
    let t = kastell_testkit::platform::PlatformFixture::transport(&f);
    let p = kastell_testkit::platform::PlatformFixture::platform(&f);
    p.stop().await.unwrap();
    p.start().await.unwrap();
    assert_eq!(
        t.commands(),
        vec![
            "docker service scale dokploy=0",
            "docker service scale dokploy=1"
        ]
    );
    let update = kastell_paas::commands::update(&kastell_dokploy::SPEC).unwrap();
    assert!(
        update
            .as_str()
            .contains("curl -fsSL 'https://dokploy.com/install.sh'")
    );
    assert!(update.as_str().ends_with("sh \"$d/install.sh\" 'update'"));
}

#[test]
fn the_spec_names_the_secret() {
    assert_eq!(
        kastell_dokploy::SPEC.secret,
        kastell_paas::SecretSpec::SwarmSecret {
            service: "dokploy",
            name: "dokploy-auth-secret",
            override_var: Some("ENCRYPTION_KEY"),
        }
    );
    assert_eq!(
        kastell_dokploy::SPEC.secret_artifact(),
        "dokploy-platform-secret"
    );
}

#[tokio::test]
async fn no_database_container_is_an_error() {
    let f = fixture().reply("docker ps -qf", Reply::ok(""));
    let p = kastell_testkit::platform::PlatformFixture::platform(&f);
    let err = p
        .backup(&mut kastell_core::memory::MemoryArtifacts::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), kastell_core::ErrorKind::NotFound);
    assert!(err.message().contains("dokploy-postgres"));
}
