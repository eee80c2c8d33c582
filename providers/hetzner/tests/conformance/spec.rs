//! The simulator's answers against Hetzner's published specification: the
//! `Link` pagination header, the fields marked required on the objects it
//! returns, and request validation with Hetzner's error envelope.

use kastell_hetzner::sim::HetznerSim;
use kastell_sim::{SimOptions, Simulator};
use kastell_testkit::raw::call;
use serde_json::{Value, json};

async fn sim() -> HetznerSim {
    HetznerSim::start(SimOptions::default())
        .await
        .unwrap_or_else(|e| panic!("starting the simulator: {e}"))
}

fn has_all(object: &Value, fields: &[&str], what: &str) {
    for field in fields {
        assert!(
            object.get(field).is_some(),
            "{what} lacks the required field {field}: {object}"
        );
    }
}

/// Lists carry `Link` with `prev`, `next` and `last` where they exist, as
/// absolute URLs keeping the filters.
#[tokio::test]
async fn lists_carry_the_documented_link_header() {
    let sim = sim().await;
    let middle = call(&sim, "GET", "/servers?page=2&per_page=50&sort=id", None).await;
    let link = middle.header("link").expect("a Link header on page 2 of 3");
    assert!(link.contains("page=1&per_page=50>; rel=\"prev\""), "{link}");
    assert!(link.contains("page=3&per_page=50>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3&per_page=50>; rel=\"last\""), "{link}");
    assert!(link.contains("sort=id"), "filters are kept: {link}");
    assert!(
        link.starts_with(&format!("<{}/servers?", sim.endpoint())),
        "{link}"
    );
    let last = call(&sim, "GET", "/servers?page=3&per_page=50", None).await;
    let link = last.header("link").expect("a Link header on the last page");
    assert!(!link.contains("rel=\"next\""), "{link}");
    let single = call(&sim, "GET", "/server_types", None).await;
    assert_eq!(single.header("link"), None, "one page has no links");
}

/// Servers, their datacenter, location, image and type, and prices carry
/// every field the spec marks required.
#[tokio::test]
async fn answers_carry_the_fields_the_spec_requires() {
    let sim = sim().await;
    let id = &sim.server_ids()[0];
    let answer = call(&sim, "GET", &format!("/servers/{id}"), None).await;
    let server = &answer.body["server"];
    has_all(
        server,
        &[
            "id",
            "name",
            "status",
            "created",
            "public_net",
            "private_net",
            "server_type",
            "datacenter",
            "location",
            "image",
            "iso",
            "rescue_enabled",
            "locked",
            "backup_window",
            "outgoing_traffic",
            "ingoing_traffic",
            "included_traffic",
            "protection",
            "labels",
            "volumes",
            "load_balancers",
            "primary_disk_size",
            "placement_group",
        ],
        "server",
    );
    let location = [
        "id",
        "name",
        "description",
        "country",
        "city",
        "latitude",
        "longitude",
        "network_zone",
    ];
    has_all(&server["location"], &location, "location");
    has_all(
        &server["datacenter"],
        &["id", "name", "description", "location", "server_types"],
        "datacenter",
    );
    has_all(
        &server["datacenter"]["location"],
        &location,
        "datacenter location",
    );
    has_all(
        &server["image"],
        &[
            "id",
            "type",
            "status",
            "name",
            "description",
            "image_size",
            "disk_size",
            "created",
            "created_from",
            "bound_to",
            "os_flavor",
            "os_version",
            "rapid_deploy",
            "protection",
            "deprecated",
            "labels",
            "deleted",
            "architecture",
        ],
        "image",
    );
    let kind = [
        "id",
        "name",
        "description",
        "cores",
        "memory",
        "disk",
        "deprecated",
        "prices",
        "storage_type",
        "cpu_type",
        "architecture",
    ];
    has_all(&server["server_type"], &kind, "server type");
    has_all(
        &server["public_net"]["ipv4"],
        &["id", "ip", "blocked", "dns_ptr"],
        "ipv4",
    );
    let pricing = call(&sim, "GET", "/pricing", None).await;
    has_all(
        &pricing.body["pricing"],
        &[
            "currency",
            "vat_rate",
            "image",
            "floating_ip",
            "floating_ips",
            "primary_ips",
            "server_backup",
            "server_types",
            "load_balancer_types",
            "volume",
        ],
        "pricing",
    );
    let ips = call(&sim, "GET", "/primary_ips?per_page=1", None).await;
    has_all(
        &ips.body["primary_ips"][0],
        &[
            "id",
            "name",
            "ip",
            "type",
            "assignee_id",
            "assignee_type",
            "auto_delete",
            "blocked",
            "dns_ptr",
            "labels",
            "protection",
            "created",
            "datacenter",
        ],
        "primary ip",
    );
}

/// `POST /servers` and `POST /ssh_keys` refuse what Hetzner refuses, with
/// `invalid_input` naming the fields or `uniqueness_error`.
#[tokio::test]
async fn creation_requests_are_checked_field_by_field() {
    let sim = sim().await;
    let empty = call(&sim, "POST", "/servers", Some(json!({}))).await;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.body["error"]["code"], "invalid_input");
    let fields: Vec<&str> = empty.body["error"]["details"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    for field in ["name", "server_type", "image"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let body = json!({"name": "n1", "server_type": "cx23", "image": "ubuntu-24.04",
                      "location": "mars1", "ssh_keys": [999]});
    let wrong = call(&sim, "POST", "/servers", Some(body)).await;
    let text = wrong.body.to_string();
    assert!(
        text.contains("location") && text.contains("ssh_keys"),
        "{text}"
    );
    let key = json!({"name": "k", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 t",
                     "labels": {"kastell-managed": "true"}});
    let created = call(&sim, "POST", "/ssh_keys", Some(key.clone())).await;
    assert_eq!(created.status, 201);
    has_all(
        &created.body["ssh_key"],
        &[
            "id",
            "name",
            "fingerprint",
            "public_key",
            "labels",
            "created",
        ],
        "ssh key",
    );
    let twice = call(&sim, "POST", "/ssh_keys", Some(key)).await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.body["error"]["code"], "uniqueness_error");
    let body = json!({"name": "n1", "server_type": "cx23", "image": "ubuntu-24.04",
                      "ssh_keys": [created.body["ssh_key"]["id"]],
                      "labels": {"kastell-managed": "true", "kastell-role": "drill"}});
    let server = call(&sim, "POST", "/servers", Some(body.clone())).await;
    assert_eq!(server.status, 201, "{}", server.body);
    assert_eq!(server.body["server"]["status"], "initializing");
    assert_eq!(server.body["action"]["command"], "create_server");
    let again = call(&sim, "POST", "/servers", Some(body)).await;
    assert_eq!(again.body["error"]["code"], "uniqueness_error");
    let selected = call(
        &sim,
        "GET",
        "/servers?label_selector=kastell-role%3Ddrill",
        None,
    )
    .await;
    assert_eq!(selected.body["servers"].as_array().map(Vec::len), Some(1));
    let none = call(
        &sim,
        "GET",
        "/servers?label_selector=kastell-role%3Drecovery",
        None,
    )
    .await;
    assert_eq!(none.body["servers"].as_array().map(Vec::len), Some(0));
}
