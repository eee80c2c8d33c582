//! What the simulated Hetzner project can create: server types with their
//! prices per location, locations with their datacenters, and their JSON.

use serde_json::{Value, json};

/// Hetzner's VAT factor on net prices in the simulated project (19 %).
const VAT: f64 = 1.19;

/// A server type and its net price (the same in every location).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerType {
    pub(crate) id: i64,
    pub(crate) name: &'static str,
    pub(crate) cores: u32,
    pub(crate) memory: f64,
    pub(crate) disk: u32,
    pub(crate) cpu_type: &'static str,
    pub(crate) category: &'static str,
    pub(crate) monthly_net: f64,
    pub(crate) hourly_net: f64,
}

/// The server types on offer (x86, cost-optimised and regular).
pub(crate) const TYPES: [ServerType; 4] = [
    ServerType {
        id: 114,
        name: "cx23",
        cores: 2,
        memory: 4.0,
        disk: 40,
        cpu_type: "shared",
        category: "cost_optimized",
        monthly_net: 2.99,
        hourly_net: 0.0048,
    },
    ServerType {
        id: 115,
        name: "cx33",
        cores: 4,
        memory: 8.0,
        disk: 80,
        cpu_type: "shared",
        category: "cost_optimized",
        monthly_net: 4.99,
        hourly_net: 0.008,
    },
    ServerType {
        id: 116,
        name: "cpx22",
        cores: 2,
        memory: 4.0,
        disk: 80,
        cpu_type: "shared",
        category: "regular_purpose",
        monthly_net: 5.99,
        hourly_net: 0.0096,
    },
    ServerType {
        id: 96,
        name: "ccx13",
        cores: 2,
        memory: 8.0,
        disk: 80,
        cpu_type: "dedicated",
        category: "general_purpose",
        monthly_net: 12.49,
        hourly_net: 0.02,
    },
];

/// A location and its one datacenter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Location {
    pub(crate) id: i64,
    pub(crate) name: &'static str,
    pub(crate) city: &'static str,
    pub(crate) country: &'static str,
    pub(crate) zone: &'static str,
    pub(crate) latitude: f64,
    pub(crate) longitude: f64,
    pub(crate) datacenter: (i64, &'static str),
}

/// The locations servers can be created in.
pub(crate) const LOCATIONS: [Location; 3] = [
    Location {
        id: 1,
        name: "fsn1",
        city: "Falkenstein",
        country: "DE",
        zone: "eu-central",
        latitude: 50.47612,
        longitude: 12.370071,
        datacenter: (4, "fsn1-dc14"),
    },
    Location {
        id: 2,
        name: "nbg1",
        city: "Nuremberg",
        country: "DE",
        zone: "eu-central",
        latitude: 49.452102,
        longitude: 11.076665,
        datacenter: (2, "nbg1-dc3"),
    },
    Location {
        id: 3,
        name: "hel1",
        city: "Helsinki",
        country: "FI",
        zone: "eu-central",
        latitude: 60.169855,
        longitude: 24.938379,
        datacenter: (3, "hel1-dc2"),
    },
];

/// The server type named `name`.
pub(crate) fn server_type(name: &str) -> Option<&'static ServerType> {
    TYPES.iter().find(|t| t.name == name)
}

/// The location named `name`.
pub(crate) fn location(name: &str) -> Option<&'static Location> {
    LOCATIONS.iter().find(|l| l.name == name)
}

/// A price as Hetzner writes it: `{"net": "2.9900", "gross": "3.5581"}`.
fn price(net: f64) -> Value {
    json!({"net": format!("{net:.10}"), "gross": format!("{:.16}", net * VAT)})
}

/// One price entry per location for `t`.
pub(crate) fn prices(t: &ServerType) -> Vec<Value> {
    LOCATIONS
        .iter()
        .map(|l| {
            json!({
                "location": l.name,
                "price_hourly": price(t.hourly_net),
                "price_monthly": price(t.monthly_net),
                "included_traffic": 21_990_232_555_520_u64,
                "price_per_tb_traffic": price(1.0),
            })
        })
        .collect()
}

/// A server type as `GET /server_types` shows it.
pub(crate) fn server_type_json(t: &ServerType) -> Value {
    json!({
        "id": t.id, "name": t.name, "description": t.name.to_uppercase(),
        "category": t.category, "cores": t.cores, "memory": t.memory, "disk": t.disk,
        "deprecated": false, "deprecation": null, "prices": prices(t),
        "storage_type": "local", "cpu_type": t.cpu_type, "architecture": "x86",
    })
}

/// A location with every field the spec requires.
pub(crate) fn location_json(l: &Location) -> Value {
    json!({
        "id": l.id, "name": l.name, "description": format!("{} DC Park 1", l.city),
        "country": l.country, "city": l.city, "latitude": l.latitude,
        "longitude": l.longitude, "network_zone": l.zone,
    })
}

/// The location's datacenter with every field the spec requires.
pub(crate) fn datacenter_json(l: &Location) -> Value {
    let ids: Vec<i64> = TYPES.iter().map(|t| t.id).collect();
    json!({
        "id": l.datacenter.0, "name": l.datacenter.1,
        "description": format!("{} DC {}", l.city, l.datacenter.0),
        "location": location_json(l),
        "server_types": {"supported": ids, "available": ids, "available_for_migration": ids},
    })
}

/// `GET /pricing`'s `server_types`.
pub(crate) fn pricing_json() -> Vec<Value> {
    TYPES
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name, "prices": prices(t)}))
        .collect()
}
