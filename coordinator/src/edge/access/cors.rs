//! CORS, from each bucket's rules, in [`CorsHeaders`] around the S3 service: a browser's
//! preflight `OPTIONS` is answered there (before any signature check: browsers send
//! preflights without credentials, and the answer reveals only whether a rule allows the
//! request), and the actual responses get their `Access-Control-*` headers.
//!
//! A rule matches a request when one of its origins matches the `Origin` (each origin may
//! hold one `*`), one of its methods is the request's (a preflight's
//! `Access-Control-Request-Method`), and, for a preflight, every header named in
//! `Access-Control-Request-Headers` matches one of its allowed headers. The first matching
//! rule answers. A preflight no rule allows gets 403; one without `Origin` or
//! `Access-Control-Request-Method` 400.

use crate::edge::error::{error_document, s3_err};
use crate::edge::host::bucket_of;
use crate::error::ApiError;
use crate::meta::CorsRule;
use crate::state::Coordinator;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use hyper::body::Incoming;
use s3s::S3Result;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The first rule allowing `origin` to use `method` with `headers`.
pub fn matching<'r>(
    rules: &'r [CorsRule],
    origin: &str,
    method: &str,
    headers: &[String],
) -> Option<&'r CorsRule> {
    rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| wildcard(o, origin))
            && r.allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            && headers.iter().all(|h| {
                r.allowed_headers
                    .iter()
                    .any(|a| wildcard(&a.to_ascii_lowercase(), &h.to_ascii_lowercase()))
            })
    })
}

fn wildcard(pattern: &str, value: &str) -> bool {
    super::policy::glob(pattern, value, false)
}

/// The `Access-Control-*` headers a matching `rule` puts on an answer to `origin`.
fn allow_headers(rule: &CorsRule, origin: &str, into: &mut HeaderMap) {
    let allow_origin = if rule.allowed_origins.iter().any(|o| o == "*") {
        "*"
    } else {
        origin
    };
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            into.insert(name, v);
        }
    };
    put("access-control-allow-origin", allow_origin.to_string());
    put(
        "access-control-allow-methods",
        rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        put(
            "access-control-expose-headers",
            rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        put("access-control-max-age", age.to_string());
    }
    if allow_origin != "*" {
        put("vary", "Origin".to_string());
    }
}

async fn rules_of(c: &Coordinator, bucket: &str) -> S3Result<Vec<CorsRule>> {
    let meta = c.meta.bucket(bucket.to_string()).await.map_err(s3_err)?;
    Ok(meta.and_then(|m| m.cors).unwrap_or_default())
}

/// The answer to a preflight (`OPTIONS`): the headers of the rule that allows it, 403 if
/// none does, 400 if it is not a preflight.
async fn preflight(c: &Coordinator, parts: &http::request::Parts) -> (http::StatusCode, HeaderMap) {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let mut out = HeaderMap::new();
    let (Some(origin), Some(method)) = (header("origin"), header("access-control-request-method"))
    else {
        return (http::StatusCode::BAD_REQUEST, out);
    };
    let asked: Vec<String> = header("access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(bucket) = bucket_of(&parts.uri, &parts.headers, c.config.domain.as_deref()) else {
        return (http::StatusCode::BAD_REQUEST, out);
    };
    let rules = rules_of(c, &bucket).await.unwrap_or_default();
    let Some(rule) = matching(&rules, origin, method, &asked) else {
        return (http::StatusCode::FORBIDDEN, out);
    };
    allow_headers(rule, origin, &mut out);
    if !asked.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&asked.join(", ")) {
            out.insert("access-control-allow-headers", v);
        }
    }
    (http::StatusCode::OK, out)
}

/// Answers preflights and adds the `Access-Control-*` headers to answers of requests with
/// an `Origin` that a rule of their bucket allows.
#[derive(Clone)]
pub struct CorsHeaders<S> {
    inner: S,
    c: Arc<Coordinator>,
}

impl<S> CorsHeaders<S> {
    /// Wraps the S3 service `inner` of coordinator `c`.
    pub fn new(inner: S, c: Arc<Coordinator>) -> Self {
        CorsHeaders { inner, c }
    }
}

impl<S, B> hyper::service::Service<http::Request<Incoming>> for CorsHeaders<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: hyper::body::Body<Data = Bytes> + From<String> + Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        if req.method() == Method::OPTIONS {
            let c = self.c.clone();
            let (parts, _) = req.into_parts();
            return Box::pin(async move {
                let (status, headers) = preflight(&c, &parts).await;
                let body = match status {
                    http::StatusCode::OK => String::new(),
                    http::StatusCode::FORBIDDEN => error_document(ApiError::CorsForbidden).1,
                    _ => {
                        error_document(ApiError::InvalidRequest(
                            "a CORS preflight needs Origin and Access-Control-Request-Method"
                                .into(),
                        ))
                        .1
                    }
                };
                let mut resp = http::Response::new(B::from(body));
                *resp.status_mut() = status;
                *resp.headers_mut() = headers;
                Ok(resp)
            });
        }
        let origin = req
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let asked = origin
            .as_ref()
            .filter(|_| req.method() != Method::OPTIONS)
            .and_then(|_| {
                let method = req
                    .headers()
                    .get("access-control-request-method")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| req.method().to_string(), String::from);
                let domain = self.c.config.domain.as_deref();
                bucket_of(req.uri(), req.headers(), domain).map(|b| (b, method))
            });
        let fut = self.inner.call(req);
        let c = self.c.clone();
        Box::pin(async move {
            let mut resp = fut.await?;
            if let (Some(origin), Some((bucket, method))) = (origin, asked) {
                if let Ok(rules) = rules_of(&c, &bucket).await {
                    if let Some(rule) = matching(&rules, &origin, &method, &[]) {
                        allow_headers(rule, &origin, resp.headers_mut());
                    }
                }
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_methods_and_headers_match() {
        let rules = vec![
            CorsRule {
                allowed_origins: vec!["*suffix".into(), "start*end".into()],
                allowed_methods: vec!["GET".into()],
                allowed_headers: vec!["x-amz-meta-*".into()],
                ..Default::default()
            },
            CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["PUT".into()],
                ..Default::default()
            },
        ];
        assert!(matching(&rules, "foo.suffix", "GET", &[]).is_some());
        assert!(matching(&rules, "start12end", "GET", &["X-Amz-Meta-A".into()]).is_some());
        assert!(matching(&rules, "0start12end", "GET", &[]).is_none());
        assert!(matching(&rules, "foo.suffix", "GET", &["x-other".into()]).is_none());
        assert!(matching(&rules, "anything", "PUT", &[]).is_some());
        assert!(matching(&rules, "anything", "DELETE", &[]).is_none());
    }
}
