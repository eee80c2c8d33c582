//! kastell provider for Linode (Akamai) (being written).
