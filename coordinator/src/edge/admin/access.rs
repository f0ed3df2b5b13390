//! Access keys and bucket permissions.

use super::{admin_error, reply};
use crate::error::ApiError;
use crate::meta::{now_ms, Grant, KeyRecord};
use crate::state::Coordinator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// A new key's request.
#[derive(serde::Deserialize)]
pub(super) struct NewKey {
    name: String,
}

/// An imported key's request.
#[derive(serde::Deserialize)]
pub(super) struct ImportKey {
    access_key_id: String,
    secret_access_key: String,
    name: String,
}

pub(super) fn random_chars(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

pub(super) async fn store_key(
    c: &Coordinator,
    k: KeyRecord,
) -> Result<serde_json::Value, ApiError> {
    let out = key_json(&k, true);
    c.meta.create_key(k).await?;
    Ok(out)
}

pub(super) fn key_json(k: &KeyRecord, secret: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "access_key_id": k.id,
        "name": k.name,
        "created_ms": k.created_ms,
    });
    if secret {
        v["secret_access_key"] = k.secret.clone().into();
    }
    v
}

pub(super) async fn create_key(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<NewKey>,
) -> Response {
    let k = KeyRecord {
        id: format!(
            "TK{}",
            random_chars(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        ),
        secret: random_chars(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        ),
        name: req.name,
        created_ms: now_ms(),
    };
    reply(store_key(&c, k).await)
}

pub(super) async fn import_key(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<ImportKey>,
) -> Response {
    let id_ok = (3..=128).contains(&req.access_key_id.len())
        && req.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let secret_ok = (8..=128).contains(&req.secret_access_key.len())
        && req.secret_access_key.bytes().all(|b| b.is_ascii_graphic());
    if !id_ok || !secret_ok {
        return admin_error(ApiError::InvalidArgument(
            "access key ids are 3-128 letters and digits; secrets 8-128 printable characters"
                .into(),
        ));
    }
    let k = KeyRecord {
        id: req.access_key_id,
        secret: req.secret_access_key,
        name: req.name,
        created_ms: now_ms(),
    };
    reply(store_key(&c, k).await)
}

pub(super) async fn list_keys(State(c): State<Arc<Coordinator>>) -> Response {
    reply(
        c.meta
            .keys()
            .await
            .map(|ks| ks.iter().map(|k| key_json(k, false)).collect::<Vec<_>>()),
    )
}

pub(super) async fn delete_key(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Response {
    match c.meta.delete_key(id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => admin_error(ApiError::InvalidArgument("no such access key".into())),
        Err(e) => admin_error(e.into()),
    }
}

pub(super) async fn bucket_info(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
) -> Response {
    let info = async {
        let b = c
            .meta
            .bucket(b.clone())
            .await?
            .ok_or(ApiError::NoSuchBucket(b))?;
        // Its usage, current and noncurrent, from the counters kept on commit.
        let usage = c
            .meta
            .counters()
            .await?
            .buckets
            .remove(&b.name)
            .unwrap_or_default();
        Ok::<_, ApiError>(serde_json::json!({
            "usage": usage,
            "name": b.name,
            "owner": b.owner,
            "grants": b.grants,
            "ec": b.ec.to_string(),
            "created_ms": b.created_ms,
            "versioning": b.versioning,
            "object_lock": b.object_lock,
            "lifecycle": b.lifecycle,
        }))
    };
    reply(info.await)
}

/// Permissions to add or remove; none named means all three.
#[derive(serde::Deserialize)]
pub(super) struct GrantChange {
    key: String,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    owner: bool,
}

pub(super) async fn change_grant(
    c: Arc<Coordinator>,
    bucket: String,
    ch: GrantChange,
    add: bool,
) -> Response {
    let all = !(ch.read || ch.write || ch.owner);
    let r: Result<serde_json::Value, ApiError> = async {
        let b = c
            .meta
            .bucket(bucket.clone())
            .await?
            .ok_or_else(|| ApiError::NoSuchBucket(bucket.clone()))?;
        let mut g: Grant = b.grants.get(&ch.key).copied().unwrap_or_default();
        let set = |flag: &mut bool, named: bool| {
            if named || all {
                *flag = add;
            }
        };
        set(&mut g.read, ch.read);
        set(&mut g.write, ch.write);
        set(&mut g.owner, ch.owner);
        let b = c.meta.set_grant(bucket.clone(), ch.key.clone(), g).await?;
        Ok(serde_json::json!({ "name": b.name, "owner": b.owner, "grants": b.grants }))
    }
    .await;
    reply(r)
}

pub(super) async fn allow(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
    Json(ch): Json<GrantChange>,
) -> Response {
    change_grant(c, b, ch, true).await
}

pub(super) async fn deny(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
    Json(ch): Json<GrantChange>,
) -> Response {
    change_grant(c, b, ch, false).await
}
