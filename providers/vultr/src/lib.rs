//! kastell provider for Vultr (being written).
