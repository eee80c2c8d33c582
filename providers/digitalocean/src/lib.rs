//! kastell provider for DigitalOcean (being written).
