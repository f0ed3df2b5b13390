//! The client API: S3 path-style HTTP.
//!
//! | request | action |
//! |---|---|
//! | `GET /` | list buckets |
//! | `PUT /{bucket}` (`x-tessera-ec: K+M` optional) | create bucket |
//! | `HEAD /{bucket}`, `DELETE /{bucket}` | bucket exists?, delete empty bucket |
//! | `GET /{bucket}?list-type=2&prefix&delimiter&max-keys&continuation-token&start-after` | ListObjectsV2 |
//! | `PUT /{bucket}/{key}` | store object (streamed) |
//! | `GET`/`HEAD /{bucket}/{key}` (`Range` optional) | read object / its headers |
//! | `DELETE /{bucket}/{key}` | delete object (204 even if absent) |

use crate::error::{ApiError, S3Error};
use crate::get::{parse_range, stream_range, ByteRange, StripeReader};
use crate::meta::{now_ms, BucketMeta, ObjectMeta};
use crate::names::{BucketName, EcSpec, ObjectKey};
use crate::put::{put_object, PutRequest};
use crate::server::Coordinator;
use crate::xml::{escape, iso8601, DECL};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// The client router.
pub fn app(c: Arc<Coordinator>) -> Router {
    Router::new()
        .route("/", get(list_buckets))
        .route("/{bucket}", any(bucket_op))
        .route("/{bucket}/", any(bucket_op))
        .route("/{bucket}/{*key}", any(object_op))
        .with_state(c)
}

type Reply = Result<Response, S3Error>;

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/xml")], body).into_response()
}

async fn list_buckets(State(c): State<Arc<Coordinator>>) -> Reply {
    let buckets = c.meta(|m| m.buckets()).await.map_err(|e| S3Error {
        error: e,
        resource: "/".into(),
        head: false,
    })?;
    let mut out = format!("{DECL}<ListAllMyBucketsResult><Owner><ID>tessera</ID><DisplayName>tessera</DisplayName></Owner><Buckets>");
    for b in buckets {
        let _ = write!(
            out,
            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
            escape(&b.name),
            iso8601(b.created_ms)
        );
    }
    out.push_str("</Buckets></ListAllMyBucketsResult>");
    Ok(xml(StatusCode::OK, out))
}

async fn bucket_op(
    State(c): State<Arc<Coordinator>>,
    Path(bucket): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Reply {
    let resource = format!("/{bucket}");
    let head = method == Method::HEAD;
    let err = |error| S3Error {
        error,
        resource: resource.clone(),
        head,
    };
    let name = BucketName::parse(&bucket).map_err(err)?;
    let r: Result<Response, ApiError> = async {
        match method {
            Method::PUT => create_bucket(&c, name, &headers).await,
            Method::DELETE => {
                let n = name.to_string();
                c.meta(move |m| m.delete_bucket(&n)).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Method::HEAD => match c.meta(move |m| m.bucket(name.as_str())).await? {
                Some(_) => Ok(StatusCode::OK.into_response()),
                None => Err(ApiError::NoSuchBucket(bucket.clone())),
            },
            Method::GET => list_objects(&c, name, &q).await,
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
    .await;
    r.map_err(err)
}

async fn create_bucket(
    c: &Arc<Coordinator>,
    name: BucketName,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let ec = match headers.get("x-tessera-ec") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<EcSpec>().ok())
            .ok_or_else(|| {
                ApiError::InvalidArgument(format!("bad x-tessera-ec {v:?}; expected K+M"))
            })?,
        None => c.config.default_ec,
    };
    let registered = c.registry.registered();
    if ec.total() > registered {
        return Err(ApiError::InvalidArgument(format!(
            "erasure code {ec} needs {} nodes but {registered} are registered",
            ec.total()
        )));
    }
    let b = BucketMeta {
        name: name.to_string(),
        created_ms: now_ms(),
        ec,
    };
    c.meta(move |m| m.create_bucket(&b)).await?;
    Ok((StatusCode::OK, [("location", format!("/{name}"))]).into_response())
}

async fn list_objects(
    c: &Arc<Coordinator>,
    bucket: BucketName,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max_keys: usize = match q.get("max-keys") {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::InvalidArgument(format!("bad max-keys {v:?}")))?,
        None => 1000,
    };
    let max_keys = max_keys.min(1000);
    let token = match q.get("continuation-token") {
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::InvalidArgument("bad continuation-token".into()))?,
        ),
        None => None,
    };
    let start_after = token.clone().or_else(|| q.get("start-after").cloned());
    let b = bucket.to_string();
    let (p, d) = (prefix.clone(), delimiter.clone());
    let listing = c
        .meta(move |m| {
            if m.bucket(&b)?.is_none() {
                return Err(ApiError::NoSuchBucket(b));
            }
            if max_keys == 0 {
                return Ok(Default::default());
            }
            m.list(&b, &p, start_after.as_deref(), d.as_deref(), max_keys)
        })
        .await?;
    let mut out = format!(
        "{DECL}<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{}</IsTruncated>",
        escape(bucket.as_str()),
        escape(&prefix),
        listing.objects.len() + listing.prefixes.len(),
        listing.truncated
    );
    if let Some(d) = &delimiter {
        let _ = write!(out, "<Delimiter>{}</Delimiter>", escape(d));
    }
    if let Some(t) = &token {
        let _ = write!(
            out,
            "<ContinuationToken>{}</ContinuationToken>",
            hex::encode(t)
        );
    }
    if let Some(next) = &listing.next {
        // For a rolled-up prefix, continue past everything under it.
        let resume = if listing.prefixes.last() == Some(next) {
            format!("{next}\u{10FFFF}")
        } else {
            next.clone()
        };
        let _ = write!(
            out,
            "<NextContinuationToken>{}</NextContinuationToken>",
            hex::encode(resume)
        );
    }
    for o in &listing.objects {
        let _ = write!(
            out,
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            escape(&o.key),
            iso8601(o.last_modified_ms),
            o.etag,
            o.size
        );
    }
    for p in &listing.prefixes {
        let _ = write!(
            out,
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            escape(p)
        );
    }
    out.push_str("</ListBucketResult>");
    Ok(xml(StatusCode::OK, out))
}

async fn object_op(
    State(c): State<Arc<Coordinator>>,
    Path((bucket, key)): Path<(String, String)>,
    req: Request,
) -> Reply {
    let resource = format!("/{bucket}/{key}");
    let method = req.method().clone();
    let head = method == Method::HEAD;
    let err = |error| S3Error {
        error,
        resource: resource.clone(),
        head,
    };
    let bucket = BucketName::parse(&bucket).map_err(err)?;
    let key = ObjectKey::parse(&key).map_err(err)?;
    let (parts, body) = req.into_parts();
    let r: Result<Response, ApiError> = async {
        match method {
            Method::PUT => put(c, bucket, key, &parts.headers, body).await,
            Method::GET | Method::HEAD => get_object(c, bucket, key, &parts.headers, head).await,
            Method::DELETE => {
                let (b, k) = (bucket.to_string(), key.to_string());
                let removed = c
                    .meta(move |m| {
                        if m.bucket(&b)?.is_none() {
                            return Err(ApiError::NoSuchBucket(b));
                        }
                        m.delete_object(&b, &k)
                    })
                    .await?;
                if removed.is_some() {
                    c.gc_kick.notify_one();
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ApiError::MethodNotAllowed),
        }
    }
    .await;
    r.map_err(err)
}

async fn put(
    c: Arc<Coordinator>,
    bucket: BucketName,
    key: ObjectKey,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req = PutRequest::from_headers(bucket, key, headers)?;
    let out = put_object(c, req, body).await?;
    Ok((
        StatusCode::OK,
        [
            ("etag", format!("\"{}\"", out.meta.etag)),
            ("x-tessera-ec", out.meta.ec.to_string()),
        ],
    )
        .into_response())
}

fn object_headers(meta: &ObjectMeta, resp: &mut Response) {
    let h = resp.headers_mut();
    let mut set = |name: &str, v: String| {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::try_from(name),
            HeaderValue::try_from(v),
        ) {
            h.insert(n, v);
        }
    };
    set("etag", format!("\"{}\"", meta.etag));
    let modified = std::time::UNIX_EPOCH + std::time::Duration::from_millis(meta.last_modified_ms);
    set("last-modified", httpdate::fmt_http_date(modified));
    set(
        "content-type",
        meta.content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
    );
    set("accept-ranges", "bytes".into());
    set("x-tessera-ec", meta.ec.to_string());
    set("x-tessera-version", meta.version.to_string());
    for (k, v) in &meta.user_meta {
        set(&format!("x-amz-meta-{k}"), v.clone());
    }
}

async fn get_object(
    c: Arc<Coordinator>,
    bucket: BucketName,
    key: ObjectKey,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, ApiError> {
    let (b, k) = (bucket.to_string(), key.to_string());
    let meta = c
        .meta(move |m| {
            if m.bucket(&b)?.is_none() {
                return Err(ApiError::NoSuchBucket(b));
            }
            m.object(&b, &k)?
                .ok_or(ApiError::NoSuchKey { bucket: b, key: k })
        })
        .await?;
    let size = meta.size;
    let range_header = headers.get("range").and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, size)?;
    let (status, byte_range) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
        None if size == 0 => (StatusCode::OK, None),
        None => (
            StatusCode::OK,
            Some(ByteRange {
                start: 0,
                end: size - 1,
            }),
        ),
    };
    let len = byte_range.map_or(0, |r| r.end - r.start + 1);
    let body = match (head, byte_range) {
        (false, Some(r)) => {
            let reader = Arc::new(StripeReader::new(c.clone(), Arc::new(meta.clone()))?);
            Body::from_stream(stream_range(reader, r, c.config.read_ahead).await?)
        }
        _ => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    object_headers(&meta, &mut resp);
    resp.headers_mut()
        .insert("content-length", HeaderValue::from(len));
    if let (StatusCode::PARTIAL_CONTENT, Some(r)) = (status, byte_range) {
        let v = format!("bytes {}-{}/{size}", r.start, r.end);
        resp.headers_mut()
            .insert("content-range", HeaderValue::try_from(v).unwrap());
    }
    Ok(resp)
}
