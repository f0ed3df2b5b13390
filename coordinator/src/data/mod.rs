//! The data paths: bytes in, shards out, and back.
//!
//! - [`put`]: a byte stream -> stripes -> k+m node streams, staged until committed.
//! - [`get`]: the stripe reader (shared with repair) and range streaming.
//! - [`batch`]: small shard writes batched per node.

pub mod batch;
pub mod get;
pub mod put;
