//! Conformance trials against the simulator (being written).
