//! kastell provider for Hetzner Cloud (being written).
