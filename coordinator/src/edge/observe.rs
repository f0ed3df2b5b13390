//! Every client request gets an id and is counted: [`Observed`] wraps the S3 service.
//!
//! - The id ([`RequestId`]) is returned as `x-amz-request-id` (and in S3 error bodies), is the
//!   request's [`tessera_node::trace`] scope while it is served (so node requests made for it
//!   carry it and nodes log it), and stays so while the answer's body streams.
//! - The S3 operation is named by access control once `s3s` has routed the request
//!   ([`RequestInfo::set_op`]); requests refused before that count as `Unknown`.
//! - When the answer's body is finished (or dropped, for a client that went away), the
//!   request is counted by operation and status, its duration observed, its bytes added to
//!   the bytes sent.

use crate::state::Coordinator;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;
use tessera_node::trace::{self, RequestId};

/// The response header naming the request.
pub const REQUEST_ID_HEADER: &str = "x-amz-request-id";

/// What the edge learns about a request while serving it (in the request's extensions).
#[derive(Debug, Default)]
pub struct RequestInfo {
    op: OnceLock<String>,
}

impl RequestInfo {
    /// Names the S3 operation (the first name given wins).
    pub fn set_op(&self, op: &str) {
        let _ = self.op.set(op.to_string());
    }

    fn op(&self) -> String {
        self.op.get().cloned().unwrap_or_else(|| "Unknown".into())
    }
}

/// The S3 service with request ids and metrics (see the module docs).
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    c: Arc<Coordinator>,
}

impl<S> Observed<S> {
    /// Wraps `inner`, counting into `c`'s metrics.
    pub fn new(inner: S, c: Arc<Coordinator>) -> Self {
        Observed { inner, c }
    }
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for Observed<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin,
{
    type Response = http::Response<Counted<B>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let id = RequestId::new();
        let info = Arc::new(RequestInfo::default());
        req.extensions_mut().insert(info.clone());
        let started = Instant::now();
        let fut = trace::scope(id, self.inner.call(req));
        let c = self.c.clone();
        Box::pin(async move {
            let r = fut.await;
            match r {
                Ok(resp) => {
                    let (mut parts, body) = resp.into_parts();
                    if let Ok(v) = http::HeaderValue::from_str(&id.to_string()) {
                        parts.headers.insert(REQUEST_ID_HEADER, v);
                    }
                    let done = Done {
                        c,
                        op: info.op(),
                        status: parts.status.as_u16(),
                        started,
                    };
                    Ok(http::Response::from_parts(
                        parts,
                        Counted {
                            inner: body,
                            id,
                            done: Some(done),
                        },
                    ))
                }
                Err(e) => {
                    c.metrics
                        .request(&info.op(), 500, started.elapsed().as_secs_f64());
                    Err(e)
                }
            }
        })
    }
}

/// Counts a request once its answer is over.
struct Done {
    c: Arc<Coordinator>,
    op: String,
    status: u16,
    started: Instant,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.c
            .metrics
            .request(&self.op, self.status, self.started.elapsed().as_secs_f64());
    }
}

/// A response body that counts its bytes, polls the inner body in the request's trace scope,
/// and counts the request when it ends or is dropped.
pub struct Counted<B> {
    inner: B,
    id: RequestId,
    done: Option<Done>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let r = trace::sync_scope(this.id, || Pin::new(&mut this.inner).poll_frame(cx));
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let (Some(d), Some(done)) = (f.data_ref(), &this.done) {
                    done.c.metrics.sent_bytes.inc_by(d.len() as u64);
                }
            }
            Poll::Ready(None) => {
                this.done.take();
            }
            Poll::Ready(Some(Err(_))) => {
                // An aborted body (a stripe that could not be read): not a success.
                if let Some(d) = &mut this.done {
                    d.status = 500;
                }
                this.done.take();
            }
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The coordinator's metrics in the Prometheus text format, the state gauges read now.
pub async fn render_metrics(c: &Coordinator) -> String {
    let nodes = c
        .registry
        .view()
        .into_iter()
        .map(|n| {
            let labels = crate::metrics::NodeLabels {
                node: n.id.to_string(),
                zone: n.zone.clone(),
            };
            let s = &n.scrub;
            let figures = [
                n.used,
                n.free,
                n.capacity,
                s.shards_checked,
                s.corrupt_found,
                s.passes,
            ];
            (labels, n.up, figures)
        })
        .collect();
    let r = c.repair.counts();
    let counted = c.meta.counters().await.ok();
    let state = crate::metrics::StateGauges {
        nodes,
        repair: [r.queue, r.suspects, r.degraded, r.unrecoverable],
        pending_and_garbage: counted
            .as_ref()
            .map(|n| (n.records.pending, n.records.garbage)),
        buckets: counted
            .map(|n| {
                n.buckets
                    .into_iter()
                    .map(|(b, n)| {
                        let figures = [
                            n.objects,
                            n.logical_bytes,
                            n.stored_bytes,
                            n.noncurrent_bytes,
                        ];
                        (b, figures)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        engine: c.meta.engine_gauges().await.unwrap_or_default(),
        raft: c.cluster.as_ref().map(|cl| cl.local_state()),
    };
    c.metrics.render(state)
}
