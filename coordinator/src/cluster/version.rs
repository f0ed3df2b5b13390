//! The state machine version: members of a group exchange Raft messages, forwarded writes
//! and read indexes only with members that apply commands the same way.
//!
//! Every member applies every command itself, and a command's outcome is decided there
//! (conditions, access stamps hashed from records' JSON), so two builds that decide or
//! serialize differently would let members diverge. Each request to a peer carries
//! [`STATE_MACHINE`] in [`HEADER`]; a member answers one without it, or with another value,
//! `409 Conflict` and does nothing with it. To the sender that member is unreachable, so a
//! group whose majority runs one version keeps working and the others wait, holding what they
//! had, until they run it too. A group forms, and takes a new member, only if every member
//! reports the same version (`GET /raft/hello`).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// This build's state machine version. Raise it with any change to what a command does
/// when applied, to how a log entry, command or stored record serializes, or to what an
/// access stamp hashes; the `serialized_forms` test below fails when the serialized form of
/// its samples changes.
pub const STATE_MACHINE: u32 = 1;

/// The request header carrying the sender's [`STATE_MACHINE`].
pub const HEADER: &str = "x-tessera-state-machine";

/// A request to a peer, carrying this build's version.
pub fn to_peer(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header(HEADER, STATE_MACHINE)
}

/// Middleware: passes requests from members of this version, answers `409` to the rest.
pub async fn require_same(req: Request, next: Next) -> Response {
    let theirs = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if theirs == Some(STATE_MACHINE) {
        return next.run(req).await;
    }
    let theirs = theirs.map_or("none".to_string(), |v| v.to_string());
    (
        StatusCode::CONFLICT,
        axum::Json(serde_json::json!({
            "error": "state machine version",
            "message": format!(
                "this member applies state machine version {STATE_MACHINE}, the sender {theirs}: \
                 the members of a group must run one build"
            ),
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use crate::meta::{access_stamp, BucketMeta, Grant, KeyRecord};
    use std::collections::BTreeMap;

    /// Samples of what members must serialize and hash alike (the records an access stamp
    /// covers). When this fails, that form changed: raise [`super::STATE_MACHINE`], then
    /// update the expected values here.
    #[test]
    fn serialized_forms() {
        let mut b = BucketMeta::new(
            "photos",
            1_700_000_000_000,
            "4+2".parse().unwrap(),
            Some("AKEXAMPLE".into()),
        );
        b.grants.insert(
            "AKOTHER".into(),
            Grant {
                read: true,
                write: false,
                owner: false,
            },
        );
        b.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
        b.versioning = Some("Enabled".into());
        b.tags = Some(BTreeMap::from([("team".into(), "media".into())]));
        b.replicate_below = Some(4096);
        let k = KeyRecord {
            id: "AKEXAMPLE".into(),
            secret: "secret".into(),
            name: "backups".into(),
            created_ms: 1_700_000_000_000,
        };
        let forms = (
            super::STATE_MACHINE,
            serde_json::to_string(&b).unwrap(),
            serde_json::to_string(&k).unwrap(),
            access_stamp(&b, Some(&k)),
            access_stamp(&b, None),
        );
        assert_eq!(
            forms,
            (
                1,
                concat!(
                    r#"{"name":"photos","created_ms":1700000000000,"ec":{"k":4,"m":2},"#,
                    r#""owner":"AKEXAMPLE","grants":{"AKOTHER":{"read":true,"write":false,"#,
                    r#""owner":false}},"replicate_below":4096,"#,
                    r#""policy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}","#,
                    r#""versioning":"Enabled","tags":{"team":"media"}}"#
                )
                .to_string(),
                concat!(
                    r#"{"id":"AKEXAMPLE","secret":"secret","name":"backups","#,
                    r#""created_ms":1700000000000}"#
                )
                .to_string(),
                7530330467624468181,
                276806856226063412,
            ),
            "the serialized form of a bucket or key record, or an access stamp, changed: \
             raise STATE_MACHINE and update this test"
        );
    }
}
