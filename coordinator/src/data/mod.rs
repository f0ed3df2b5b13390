//! The data paths: bytes in, shards out, and back. Every function here takes the
//! [`DataPath`] context and nothing above it; damage found while reading is reported through
//! [`DamageSink`].
//!
//! - [`context`]: the data path's context and its damage sink.
//! - [`put`]: a byte stream -> stripes -> k+m node streams, staged until committed; small
//!   bodies read whole, packable ones handed to the packer.
//! - [`pack`]: small objects packed into segments (one stripe shared by many objects): the
//!   packer stage of a PUT; [`packed_read`]: the packed stage of a GET; [`footer`]: what a
//!   segment says of the objects in it.
//! - [`write`]: the write primitives all of them share (plan, quorum check, in-flight guard,
//!   batched whole-shard writes).
//! - [`upload`]: one streaming shard upload per target node (PUT, parts and repair).
//! - [`batch`]: small shard writes batched per node.
//! - [`get`]: an object's bytes, packed or striped.
//! - [`stripes`]: the stripe reader GET and repair share (k verified pieces per stripe) and
//!   the stream of a striped object's range.

pub mod batch;
pub mod context;
pub mod footer;
pub mod get;
pub mod pack;
pub mod packed_read;
pub mod put;
pub mod stripes;
pub mod upload;
pub mod write;

pub use context::{DamageSink, DataPath};
