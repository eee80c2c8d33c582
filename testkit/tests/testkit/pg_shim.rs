//! The private PostgreSQL cluster and the platform shims, driven through a
//! real sandbox sshd as its login user.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kastell_core::{ErrorKind, Output, RemoteCommand, Transport, TransportExt};
use kastell_testkit::pg::PgCluster;
use kastell_testkit::shim::{PaasShim, ShimDir, ShimState};
use kastell_testkit::sshd::SshdFixture;

const T: Duration = Duration::from_secs(30);

/// A writer collecting into a shared buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run(f: &SshdFixture, script: &str) -> Output {
    f.ssh()
        .exec(&raw(script), T)
        .await
        .unwrap_or_else(|e| panic!("exec {script}: {e}"))
}

/// A command from test text (tests only: the text is ours).
fn raw(script: &str) -> RemoteCommand {
    RemoteCommand::template("sh -c {}", &[script])
        .unwrap_or_else(|e| panic!("cannot quote {script}: {e}"))
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn cluster_starts_answers_and_stops_leaving_no_process() {
    let mut pg = PgCluster::start().unwrap();
    let pid = pg.server_pid().expect("a running server has a pid");
    assert!(process_exists(pid));
    assert!(pg.bin_dir().join("pg_dump").is_file());
    let socket = pg.socket_dir().join(format!(".s.PGSQL.{}", pg.port()));
    assert!(socket.exists(), "no socket at {}", socket.display());

    assert_eq!(pg.psql("postgres", "select 1 + 1").unwrap(), "2");
    for role in ["coolify", "dokploy"] {
        let owner = pg
            .psql(
                "postgres",
                &format!(
                    "select r.rolname || ',' || r.rolsuper || ',' || r.rolcanlogin from pg_database d \
                     join pg_roles r on r.oid = d.datdba where d.datname = '{role}'"
                ),
            )
            .unwrap();
        assert_eq!(owner, format!("{role},true,true"));
    }
    pg.execute(
        "coolify",
        "create table t (x int); insert into t values (1), (2);",
    )
    .unwrap();
    assert_eq!(pg.psql("coolify", "select sum(x) from t").unwrap(), "3");

    // A failing statement stops the script and is an error.
    let err = pg
        .psql("coolify", "select 1/0; insert into t values (9);")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommandFailed);
    assert!(err.message().contains("division by zero"), "{err}");
    assert_eq!(pg.psql("coolify", "select count(*) from t").unwrap(), "2");

    pg.stop().unwrap();
    assert!(!process_exists(pid), "postmaster {pid} survived stop");
    assert!(!socket.exists());
    assert_eq!(
        pg.psql("postgres", "select 1").unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    pg.stop().unwrap();

    // Drop stops a running cluster too.
    let other = PgCluster::start().unwrap();
    let pid = other.server_pid().unwrap();
    let dir = other.data_dir();
    drop(other);
    assert!(!process_exists(pid));
    assert!(!dir.exists());
}

#[test]
fn concurrent_clusters_are_independent() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| PgCluster::start().unwrap());
        let b = s.spawn(|| PgCluster::start().unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.socket_dir(), b.socket_dir());
    a.execute("dokploy", "create table only_a (x int)").unwrap();
    assert!(b.psql("dokploy", "select * from only_a").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn coolify_exec_psql_runs_as_the_sandbox_user() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&shim.sandbox_options());

    let who = run(&f, "id -un; command -v docker").await;
    let who = who.stdout_text();
    assert!(who.starts_with(f.sshd.user()), "{who}");
    assert!(who.ends_with(&format!("{}/docker", shim.dir().display())));

    let out = run(
        &f,
        "docker exec coolify-db psql -U coolify -d coolify -c 'select 1'",
    )
    .await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    assert!(
        out.stdout_text().contains("(1 row)"),
        "{}",
        out.stdout_text()
    );
    assert_eq!(
        shim.commands(),
        vec!["docker exec coolify-db psql -U coolify -d coolify -c select 1"]
    );

    // Only the database container, the PostgreSQL programs and a shell
    // exist there.
    let out = run(&f, "docker exec dokploy-postgres psql -c 'select 1'").await;
    assert_eq!(out.status, 1);
    assert!(
        out.stderr_text()
            .contains("No such container: dokploy-postgres")
    );
    let out = run(&f, "docker exec coolify-db bash -c id").await;
    assert_eq!(out.status, 127);
    assert!(out.stderr_text().contains("executable file not found"));
    let out = run(&f, "docker exec coolify-db sh -c 'command -v pg_dump'").await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    let out = run(&f, "docker pull postgres").await;
    assert_eq!(out.status, 1);
    assert!(out.stderr_text().contains("not a docker command"));
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_custom_dump_restores_byte_exact() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&shim.sandbox_options());
    pg.execute(
        "coolify",
        "set role coolify; create table servers (id int primary key, name text, blob bytea);\n\
         insert into servers select i, 'server-' || i, sha256(i::text::bytea) from generate_series(1, 500) i;",
    )
    .unwrap();
    let rows = "select md5(string_agg(id || ':' || name || ':' || encode(blob, 'hex'), ',' order by id)) from servers";
    let before = pg.psql("coolify", rows).unwrap();

    let dump = Buf::default();
    let out = f
        .ssh()
        .exec_streaming(
            &raw("docker exec coolify-db pg_dump -U coolify -d coolify -Fc"),
            None,
            Box::new(dump.clone()),
            T,
        )
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{}", String::from_utf8_lossy(&out.stderr));
    let dump = dump.0.lock().unwrap().clone();
    assert!(dump.starts_with(b"PGDMP"), "not a custom-format dump");
    assert_eq!(out.bytes_received, dump.len() as u64);

    pg.execute(
        "coolify",
        "delete from servers where id > 10; update servers set name = 'changed'; \
         create table extra (x int);",
    )
    .unwrap();
    assert_ne!(pg.psql("coolify", rows).unwrap(), before);

    let restore = raw(
        "docker exec -i coolify-db pg_restore -U coolify -d coolify --clean --if-exists --single-transaction",
    );
    let out = f
        .ssh()
        .exec_streaming(
            &restore,
            Some(Box::new(std::io::Cursor::new(dump.clone()))),
            Box::new(std::io::sink()),
            T,
        )
        .await
        .unwrap();
    assert_eq!(out.status, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.bytes_sent, dump.len() as u64);
    assert_eq!(pg.psql("coolify", rows).unwrap(), before);
    // --clean drops only what the dump holds; the extra table stays.
    assert_eq!(
        pg.psql("coolify", "select count(*) from servers").unwrap(),
        "500"
    );

    // An injected failure refuses the stream with a plain exit status.
    shim.fail_next("pg_restore", 1, "pg_restore: error: injected")
        .unwrap();
    let out = f
        .ssh()
        .exec_streaming(
            &restore,
            Some(Box::new(std::io::Cursor::new(dump.repeat(64)))),
            Box::new(std::io::sink()),
            T,
        )
        .await
        .unwrap();
    assert_eq!(out.status, 1);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "pg_restore: error: injected"
    );

    // A corrupt archive fails the restore and changes nothing.
    let out = f
        .ssh()
        .exec_streaming(
            &restore,
            Some(Box::new(std::io::Cursor::new(
                dump[..dump.len() / 2].to_vec(),
            ))),
            Box::new(std::io::sink()),
            T,
        )
        .await
        .unwrap();
    assert_ne!(out.status, 0);
    assert_eq!(pg.psql("coolify", rows).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn coolify_compose_stop_and_up_control_the_database() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&shim.sandbox_options());
    let compose = format!(
        "cd {}/data/coolify/source && docker compose -f docker-compose.yml -f docker-compose.prod.yml",
        shim.root().display()
    );
    let select = "docker exec coolify-db psql -U coolify -d coolify -Atc 'select 1'";

    let out = run(&f, &format!("{compose} stop")).await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    let s = shim.state();
    assert!(!s.app_running && !s.db_running);
    let out = run(&f, select).await;
    assert_eq!(out.status, 1);
    assert_eq!(
        out.stderr_text(),
        "Error response from daemon: container coolify-db is not running"
    );
    let out = run(&f, "docker exec coolify-db pg_isready").await;
    assert_ne!(out.status, 0);

    let out = run(&f, &format!("{compose} up -d postgres")).await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    let s = shim.state();
    assert!(!s.app_running && s.db_running);
    assert_eq!(run(&f, select).await.stdout_text(), "1");
    let out = run(&f, "docker exec coolify-db pg_isready").await;
    assert_eq!(out.status, 0, "{}", out.stdout_text());

    // Run from anywhere: the working directory is not checked.
    let out = run(
        &f,
        "docker compose -f docker-compose.yml -f docker-compose.prod.yml up -d",
    )
    .await;
    assert_eq!(out.status, 0);
    assert!(shim.state().app_running && shim.state().db_running);

    let inspect = "docker inspect coolify --format '{{.Config.Image}}'";
    assert_eq!(
        run(&f, inspect).await.stdout_text(),
        "ghcr.io/coollabsio/coolify:4.0.0-beta.400"
    );
    assert_eq!(run(&f, "docker service scale dokploy=0").await.status, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn dokploy_ps_and_service_scale() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::dokploy(&pg).unwrap();
    let f = SshdFixture::start_with(&shim.sandbox_options());
    let ps = "docker ps -qf name=dokploy-postgres --no-trunc";

    let id = run(&f, ps).await.stdout_text();
    assert_eq!(id, shim.db_container_id());
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let short = run(&f, "docker ps -q -f name=dokploy-postgres")
        .await
        .stdout_text();
    assert_eq!(short, id[..12]);

    let dump = "docker exec $(docker ps -qf name=dokploy-postgres --no-trunc | head -1) psql -U dokploy -d dokploy -Atc 'select current_user'";
    let out = run(&f, dump).await;
    assert_eq!(out.stdout_text(), "dokploy", "{}", out.stderr_text());
    assert_eq!(
        run(&f, "docker exec coolify-db psql -c 'select 1'")
            .await
            .status,
        1
    );
    assert_eq!(
        run(&f, "docker inspect dokploy --format '{{.Config.Image}}'")
            .await
            .stdout_text(),
        "dokploy/dokploy:v0.21.4"
    );

    let out = run(&f, "docker service scale dokploy=0").await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "dokploy scaled to 0");
    let s = shim.state();
    assert!(!s.app_running && s.db_running);

    assert_eq!(
        run(&f, "docker service scale dokploy-postgres=0")
            .await
            .status,
        0
    );
    assert!(!shim.state().db_running);
    assert_eq!(run(&f, ps).await.stdout_text(), "");
    let refused = run(&f, &format!("docker exec {id} pg_isready")).await;
    assert_eq!(refused.status, 1);
    assert!(refused.stderr_text().contains("is not running"));

    assert_eq!(
        run(&f, "docker service scale dokploy-postgres=1")
            .await
            .status,
        0
    );
    assert_eq!(run(&f, ps).await.stdout_text(), id);
    assert_eq!(run(&f, "docker service scale dokploy=1").await.status, 0);
    assert!(shim.state().app_running);
    assert_eq!(run(&f, "docker service scale nope=1").await.status, 1);
    assert_eq!(run(&f, "docker compose up -d").await.status, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_next_fails_exactly_one_matching_call() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&shim.sandbox_options());
    let compose = "docker compose -f docker-compose.yml -f docker-compose.prod.yml";
    shim.set_state(&ShimState {
        app_running: false,
        db_running: false,
        version: "4.0.0-beta.400".into(),
    })
    .unwrap();

    shim.fail_next("up -d $", 3, "injected: compose up failed")
        .unwrap();
    shim.fail_next("pg_restore", 1, "pg_restore: error: injected")
        .unwrap();
    assert_eq!(shim.pending_failures(), vec!["up -d $", "pg_restore"]);

    // The anchored key skips `up -d postgres`, which works.
    assert_eq!(
        run(&f, &format!("{compose} up -d postgres")).await.status,
        0
    );
    assert!(shim.state().db_running);
    let out = run(&f, &format!("{compose} up -d")).await;
    assert_eq!(out.status, 3);
    assert_eq!(out.stderr_text(), "injected: compose up failed");
    assert!(!shim.state().app_running, "a failed call does nothing");
    assert_eq!(run(&f, &format!("{compose} up -d")).await.status, 0);
    assert!(shim.state().app_running);

    let restore = "docker exec -i coolify-db pg_restore -U coolify -d coolify --list < /dev/null";
    let out = run(&f, restore).await;
    assert_eq!(
        (out.status, out.stderr_text().as_str()),
        (1, "pg_restore: error: injected")
    );
    assert!(shim.pending_failures().is_empty());
    let again = run(&f, restore).await;
    assert!(!again.stderr_text().contains("injected"));

    // Failed calls are logged too.
    let log = shim.commands();
    assert_eq!(log.iter().filter(|c| c.contains("pg_restore")).count(), 2);
    assert_eq!(log.iter().filter(|c| c.ends_with("up -d")).count(), 2);

    assert!(shim.fail_next("docker", 0, "").is_err());
    assert!(shim.fail_next("  ", 1, "").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_installers_bump_the_version() {
    let pg = PgCluster::start().unwrap();
    let coolify = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&coolify.sandbox_options());
    coolify
        .set_state(&ShimState {
            app_running: false,
            db_running: true,
            version: "4.0.0-beta.400".into(),
        })
        .unwrap();
    let update = r##"set -eu; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
curl -fsSL https://cdn.coollabs.io/coolify/install.sh -o "$d/coolify-install.sh" && head -c2 "$d/coolify-install.sh" | grep -q "#!" && [ "$(wc -c < "$d/coolify-install.sh")" -gt 100 ] && bash "$d/coolify-install.sh""##;
    let out = f.ssh().exec_checked(&raw(update), T).await.unwrap();
    assert!(
        out.stdout_text()
            .contains("upgraded from 4.0.0-beta.400 to 4.0.0-beta.401")
    );
    assert_eq!(
        coolify.state(),
        ShimState {
            app_running: true,
            db_running: true,
            version: "4.0.0-beta.401".into()
        }
    );
    let inspect = "docker inspect coolify --format '{{.Config.Image}}'";
    assert_eq!(
        run(&f, inspect).await.stdout_text(),
        "ghcr.io/coollabsio/coolify:4.0.0-beta.401"
    );
    let out = run(&f, "curl -fsSL https://example.com/install.sh").await;
    assert_eq!(out.status, 22);
    let script = run(&f, "curl -fsSL https://cdn.coollabs.io/coolify/install.sh").await;
    assert!(script.stdout.starts_with(b"#!/bin/bash"));
    assert!(script.stdout.len() > 100);
    assert!(
        coolify
            .commands()
            .iter()
            .any(|c| c.starts_with("install.sh"))
    );

    // Dokploy: `sh file update`; without `update` the installer refuses.
    let dokploy = PaasShim::dokploy(&pg).unwrap();
    let g = SshdFixture::start_with(&dokploy.sandbox_options());
    let fetch = r#"d=$(mktemp -d); trap 'rm -rf "$d"' EXIT; curl -sSL https://dokploy.com/install.sh -o "$d/i.sh" && sh "$d/i.sh" "$@""#;
    let plain = run(&g, &format!("set -- ; {fetch}")).await;
    assert_eq!(plain.status, 1);
    assert_eq!(dokploy.state().version, "v0.21.4");
    let updated = run(&g, &format!("set -- update; {fetch}")).await;
    assert_eq!(updated.status, 0, "{}", updated.stderr_text());
    assert_eq!(dokploy.state().version, "v0.21.5");
    assert_eq!(
        run(&g, "docker inspect dokploy --format '{{.Config.Image}}'")
            .await
            .stdout_text(),
        "dokploy/dokploy:v0.21.5"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_root_and_generic_scripts_belong_to_the_sandbox_user() {
    let pg = PgCluster::start().unwrap();
    let shim = PaasShim::dokploy(&pg).unwrap();
    let extra = shim
        .add_script(
            "systemctl",
            "echo \"systemctl says $*\"; state_set unit \"$1\"",
        )
        .unwrap();
    assert!(extra.starts_with(shim.dir()));
    assert!(shim.add_script("../x", "true").is_err());
    let f = SshdFixture::start_with(&shim.sandbox_options());

    let out = run(&f, "systemctl restart nginx").await;
    assert_eq!(out.stdout_text(), "systemctl says restart nginx");
    assert_eq!(shim.commands().last().unwrap(), "systemctl restart nginx");

    for (relative, text) in shim.seeded_files() {
        assert_eq!(
            std::fs::read_to_string(shim.root_path(&relative)).unwrap(),
            text
        );
        assert!(text.contains("kastell-shim"));
    }
    // A tar round trip of the whole config dir (with `./`) as the sandbox user.
    let etc = shim.root_path("etc/dokploy");
    let script = format!(
        "set -eu; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; tar cf \"$d/c.tar\" -C {e} .; \
         echo changed > {e}/dokploy.yml; tar xf \"$d/c.tar\" -C {e}",
        e = etc.display()
    );
    let out = run(&f, &script).await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    assert!(
        std::fs::read_to_string(etc.join("dokploy.yml"))
            .unwrap()
            .contains("kastell-shim")
    );

    let plain = ShimDir::new().unwrap();
    assert!(plain.commands().is_empty());
    assert!(plain.root().is_dir());
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_come_from_containers_and_swarm_services_only() {
    let pg = PgCluster::start().unwrap();
    let coolify = PaasShim::coolify(&pg).unwrap();
    let f = SshdFixture::start_with(&coolify.sandbox_options());
    let out = run(&f, "docker logs --tail 2 coolify").await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    assert_eq!(
        out.stdout_text(),
        "kastell-shim app log line 19\nkastell-shim app log line 20"
    );
    let all = run(&f, "docker logs coolify-db").await.stdout_text();
    assert_eq!(all.lines().count(), 20);
    assert!(all.starts_with("kastell-shim db log line 1\n"), "{all}");
    let out = run(&f, "docker logs --tail 2 nope").await;
    assert_eq!(out.status, 1);
    assert!(out.stderr_text().contains("No such container: nope"));
    assert_eq!(run(&f, "docker logs --tail x coolify").await.status, 1);
    assert_eq!(run(&f, "docker service logs coolify").await.status, 1);

    let dokploy = PaasShim::dokploy(&pg).unwrap();
    let g = SshdFixture::start_with(&dokploy.sandbox_options());
    // A swarm service is not a container: like Docker, `docker logs`
    // does not find it by its service name.
    let out = run(&g, "docker logs --tail 2 dokploy").await;
    assert_eq!(out.status, 1);
    assert!(out.stderr_text().contains("No such container: dokploy"));
    let out = run(&g, "docker service logs --tail 2 dokploy").await;
    assert_eq!(out.status, 0, "{}", out.stderr_text());
    let lines: Vec<String> = out.stdout_text().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[1].starts_with("dokploy.1.") && lines[1].ends_with("| kastell-shim app log line 20"),
        "{lines:?}"
    );
    assert_eq!(run(&g, "docker service logs --tail 2 nope").await.status, 1);
}
