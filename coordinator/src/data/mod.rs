//! The data paths: bytes in, shards out, and back.
//!
//! - [`put`]: a byte stream -> stripes -> k+m node streams, staged until committed.
//! - [`upload`]: one streaming shard upload per target node (PUT, parts and repair).
//! - [`stripes`]: the stripe reader GET and repair share (k verified pieces per stripe).
//! - [`get`]: object ranges streamed part after part.
//! - [`batch`]: small shard writes batched per node.
//! - [`pack`]: small objects packed into segments (one stripe shared by many objects).

pub mod batch;
pub mod get;
pub mod pack;
pub mod put;
pub mod stripes;
pub mod upload;
