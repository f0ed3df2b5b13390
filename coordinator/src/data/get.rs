//! The GET data path: object bytes of a range, from the packed object's segment ([`super::pack`])
//! or part after part, stripe group after stripe group ([`super::stripes`]). The first stripe is fetched before the
//! response status is sent, so a GET that cannot be served gets a 503 with an S3 error body; a
//! later stripe that cannot be served aborts the body, so the client sees a truncated
//! transfer, never wrong bytes.

use super::stripes::stream_striped;
pub use super::stripes::ByteRange;
use super::DataPath;
use crate::error::ApiError;
use crate::meta::ObjectMeta;
use bytes::Bytes;
use futures::stream::StreamExt;
use futures::Stream;
use std::sync::Arc;

/// Streams bytes `range` (inclusive) of `obj`: a packed object from its segment, any other
/// part after part. The first stripe is fetched before this returns.
pub async fn stream_object(
    c: Arc<DataPath>,
    obj: &ObjectMeta,
    range: ByteRange,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ApiError> {
    if obj.packed.is_some() {
        let bytes = super::packed_read::read(&c, obj, range).await?;
        return Ok(futures::stream::once(async move { Ok(bytes) }).boxed());
    }
    Ok(stream_striped(c, obj, range).await?.boxed())
}
