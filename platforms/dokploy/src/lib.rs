//! kastell platform for Dokploy (being written).
