//! Reference implementations that keep everything in memory.
//!
//! They follow the same behaviour rules as the real implementations, so unit
//! tests of the engine can use them, and the conformance suite runs against
//! them to test itself.

mod artifacts;
mod cloud;
mod platform;
mod transport;

pub use artifacts::MemoryArtifacts;
pub use cloud::MemoryCloud;
pub use platform::MemoryPlatform;
pub use transport::{MemoryTransport, Reply};
