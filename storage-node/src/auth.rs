//! The cluster secret on internal traffic: requests carry it as `Authorization: Bearer
//! <secret>`, the receiver compares it in constant time and answers 401 without it, so a
//! stranger who can reach a node can neither read, list nor delete its shards, nor register a
//! rogue node with the coordinator.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Default headers for a client that presents `secret`.
pub fn headers(secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut v = HeaderValue::try_from(format!("Bearer {secret}")).expect("secret is ASCII");
    v.set_sensitive(true);
    h.insert(header::AUTHORIZATION, v);
    h
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer(h: &HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Whether `presented` equals `expected`, compared in constant time.
pub fn matches(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Middleware: passes requests bearing `secret`, answers 401 to the rest.
pub async fn require_secret(State(secret): State<Arc<str>>, req: Request, next: Next) -> Response {
    match bearer(req.headers()) {
        Some(t) if matches(t, &secret) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({
                "error": "unauthorized",
                "message": "this request needs the cluster secret"
            })),
        )
            .into_response(),
    }
}
