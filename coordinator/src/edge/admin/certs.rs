//! Mutual TLS inside the cluster, on the admin listener: `POST /cluster/certificates` (the
//! admin token) signs a node's certificate request with the cluster CA, and [`require_role`]
//! keeps node and Raft routes to connections that presented a certificate of the right role.

use super::admin_error;
use crate::error::ApiError;
use crate::state::Coordinator;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tessera_node::listen::Peer;
use tessera_node::tls::{LocalCa, Role};

/// A certificate request (`tessera node join`).
#[derive(Deserialize, Serialize)]
pub struct CertificateRequest {
    /// The request (PKCS#10, PEM), made with the key that stays on the node.
    pub csr: String,
    /// DNS names or IP addresses the node is reached at (its `--listen` address).
    pub names: Vec<String>,
    /// How long the certificate is valid, in seconds (default: 365 days).
    #[serde(default)]
    pub valid_secs: Option<u64>,
}

/// The answer: the certificate and the CA that signed it.
#[derive(Deserialize, Serialize)]
pub struct IssuedCertificate {
    /// The node's certificate (PEM), role node.
    pub certificate: String,
    /// The cluster CA's certificate (PEM): what the node trusts.
    pub ca: String,
}

/// Default validity of a node certificate.
const DEFAULT_VALID: Duration = Duration::from_secs(365 * 86_400);

/// `POST /cluster/certificates`: a node certificate for the request.
pub(super) async fn issue(
    State(c): State<Arc<Coordinator>>,
    Json(r): Json<CertificateRequest>,
) -> Response {
    let Some(ca) = c.config.cluster_ca.clone() else {
        return admin_error(ApiError::InvalidRequest(
            "this coordinator holds no cluster CA (start it with --cluster-tls)".into(),
        ));
    };
    if r.names.is_empty() || r.names.iter().any(|n| n.is_empty() || n.len() > 253) {
        return admin_error(ApiError::InvalidArgument(
            "names: one or more DNS names or IP addresses the node is reached at".into(),
        ));
    }
    let valid = r.valid_secs.map_or(DEFAULT_VALID, Duration::from_secs);
    let names = r.names.clone();
    let signed = tokio::task::spawn_blocking(move || {
        let ca = LocalCa::load(&ca)?;
        let cert = ca.sign_request(&r.csr, &r.names, Role::Node, valid)?;
        Ok::<_, std::io::Error>(IssuedCertificate {
            certificate: cert,
            ca: std::fs::read_to_string(&ca.cert)?,
        })
    })
    .await;
    match signed {
        Ok(Ok(issued)) => {
            tracing::info!(?names, ?valid, "node certificate issued");
            Json(issued).into_response()
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
            admin_error(ApiError::InvalidArgument(e.to_string()))
        }
        Ok(Err(e)) => admin_error(ApiError::Internal(format!("issuing a certificate: {e}"))),
        Err(e) => admin_error(ApiError::Internal(e.to_string())),
    }
}

/// Middleware: with `Some(role)` (a cluster with mutual TLS), passes only requests whose
/// connection presented a cluster certificate of that role, `403` for the rest; with
/// `None`, everything.
pub(super) async fn require_role(
    State(role): State<Option<Role>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(role) = role else {
        return next.run(req).await;
    };
    let presented = req.extensions().get::<Peer>().and_then(|p| p.role);
    if presented == Some(role) {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": format!(
                "this cluster uses mutual TLS: this route needs a certificate of the role {} from the cluster CA",
                role.unit()
            ),
            "code": "AccessDenied"
        })),
    )
        .into_response()
}
