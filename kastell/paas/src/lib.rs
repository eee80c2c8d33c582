//! Shared PaaS platform machinery (being written).
