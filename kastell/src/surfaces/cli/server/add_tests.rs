//! Tests for building the `server add` record.

use super::*;
use chrono::TimeZone;
use kastell_core::ErrorKind;

fn args(name: &str, ip: &str) -> AddArgs {
    AddArgs {
        name: name.into(),
        ip: ip.into(),
        provider: None,
        platform: None,
        domain: None,
        user: None,
        port: None,
        identity_file: None,
        backup_paths: Vec::new(),
        tags: Vec::new(),
        id: None,
        no_detect: false,
        account: None,
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap()
}

fn no_env() -> Env {
    Env::from_pairs::<&str, &str>([])
}

#[test]
fn defaults_match_the_original_add() {
    let rec = record_from_args(&args("web-1", "203.0.113.10"), &no_env(), now()).unwrap();
    assert_eq!(rec.id, "manual-1773576000000");
    assert_eq!(rec.region, "unknown");
    assert_eq!(rec.size, "unknown");
    assert_eq!(rec.created_at, "2026-03-15T12:00:00.000Z");
    assert_eq!(rec.mode, "coolify");
    assert_eq!(rec.platform, None);
    assert!(rec.ssh.is_none());
    assert!(rec.is_manual());
}

#[test]
fn platforms_are_written_like_the_original() {
    let mut a = args("web-1", "203.0.113.10");
    a.platform = Some("dokploy".to_owned());
    let rec = record_from_args(&a, &no_env(), now()).unwrap();
    assert_eq!(
        (rec.mode.as_str(), rec.platform.as_deref()),
        ("coolify", Some("dokploy"))
    );
    a.platform = Some("coolify".to_owned());
    let rec = record_from_args(&a, &no_env(), now()).unwrap();
    assert_eq!(
        (rec.mode.as_str(), rec.platform.as_deref()),
        ("coolify", Some("coolify"))
    );
    a.platform = Some("bare".to_owned());
    let rec = record_from_args(&a, &no_env(), now()).unwrap();
    assert_eq!((rec.mode.as_str(), rec.platform.as_deref()), ("bare", None));
    assert!(rec.is_bare());
}

#[test]
fn ssh_settings_and_backup_paths_are_kept() {
    let mut a = args("web-1", "203.0.113.10");
    a.user = Some("deploy".into());
    a.port = Some(2222);
    a.identity_file = Some("/keys/id_ed25519".into());
    a.backup_paths = vec!["/etc/nginx".into(), "/srv/app".into(), "/etc/nginx".into()];
    a.provider = Some("hetzner".into());
    a.id = Some("4242".into());
    a.domain = Some("Panel.Example.com".into());
    let rec = record_from_args(&a, &no_env(), now()).unwrap();
    let ssh = rec.ssh.clone().unwrap();
    assert_eq!(ssh.user.as_deref(), Some("deploy"));
    assert_eq!(ssh.port, Some(2222));
    assert_eq!(ssh.identity_file.as_deref(), Some("/keys/id_ed25519"));
    assert_eq!(rec.backup_paths, vec!["/etc/nginx", "/srv/app"]);
    assert_eq!(rec.id, "4242");
    assert!(!rec.is_manual());
    assert_eq!(rec.domain.as_deref(), Some("panel.example.com"));
}

#[test]
fn private_ips_need_the_switch() {
    let a = args("web-1", "10.0.0.5");
    let err = record_from_args(&a, &no_env(), now()).unwrap_err();
    assert!(
        err.message()
            .starts_with("Private/reserved IP address not allowed")
    );
    let env = Env::from_pairs([("KASTELL_ALLOW_PRIVATE_IPS", "true")]);
    assert!(record_from_args(&a, &env, now()).is_ok());
    let loopback = args("web-1", "127.0.0.1");
    assert!(record_from_args(&loopback, &env, now()).is_ok());
}

#[test]
fn hostile_inputs_are_refused() {
    let base = || args("web-1", "203.0.113.10");
    let mut cases: Vec<AddArgs> = Vec::new();
    cases.push(args("Web-1", "203.0.113.10"));
    cases.push(args("web-1", "203.0.113.010"));
    cases.push(args("web-1", "pending"));
    for provider in ["acme", "Hetzner", "", "hetzner;rm -rf /"] {
        let mut a = base();
        a.provider = Some(provider.into());
        cases.push(a);
    }
    for domain in [
        "https://x.example.com",
        "x.example.com/path",
        "x",
        "-x.example.com",
        "a..b",
        "x.example.com:443",
        "x example.com",
    ] {
        let mut a = base();
        a.domain = Some(domain.into());
        cases.push(a);
    }
    for user in ["", "1root", "root;id", "ro ot", "r\noot", &"u".repeat(33)] {
        let mut a = base();
        a.user = Some(user.into());
        cases.push(a);
    }
    for path in ["etc/nginx", "/etc/../root", "/etc/ng\ninx", ""] {
        let mut a = base();
        a.backup_paths = vec![path.into()];
        cases.push(a);
    }
    for id in ["", "a/b", "x y", "$(id)"] {
        let mut a = base();
        a.id = Some(id.into());
        cases.push(a);
    }
    for file in ["", " ", "a\nb"] {
        let mut a = base();
        a.identity_file = Some(file.into());
        cases.push(a);
    }
    for case in cases {
        let err = record_from_args(&case, &no_env(), now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case:?}");
        assert!(err.hint().is_some(), "{case:?}");
    }
}

#[test]
fn platform_choices_come_from_the_catalogue() {
    assert_eq!(parse_platform("dokploy").as_deref(), Ok("dokploy"));
    assert_eq!(parse_platform("bare").as_deref(), Ok("bare"));
    let err = parse_platform("plesk").unwrap_err();
    assert!(err.contains("unknown platform \"plesk\""), "{err}");
    for id in ["bare", "coolify", "dokploy"] {
        assert!(err.contains(id), "{err}");
    }
}
