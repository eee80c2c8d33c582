//! kastell platform for bare servers (being written).
