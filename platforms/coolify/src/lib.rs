//! kastell platform for Coolify (being written).
