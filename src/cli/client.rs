//! The one typed client every operator command uses to talk to a coordinator's admin API:
//! it presents the admin token, finds the leader of a replicated group, and sends and reads
//! JSON as the coordinator's own types.

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use tessera_coordinator::edge::admin::ClusterOverview;

/// A coordinator's admin API.
#[derive(Clone)]
pub struct Admin {
    base: String,
    http: reqwest::Client,
}

/// The admin token: `--admin-token-file`, else env `TESSERA_ADMIN_TOKEN`, else
/// `./tessera-data/coordinator/admin.token` (what `tessera dev` writes).
fn admin_token(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let read = tessera_coordinator::secrets::read_secret;
    Ok(match (file, std::env::var("TESSERA_ADMIN_TOKEN")) {
        (Some(f), _) => Some(read(f).with_context(|| format!("reading {}", f.display()))?),
        (None, Ok(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
        _ => read(Path::new("./tessera-data/coordinator/admin.token")).ok(),
    })
}

impl Admin {
    /// Connects to the coordinators at `list` (comma-separated admin URLs): the group's
    /// leader when the first coordinator that answers knows one (leader-only work such as
    /// repair runs there), else that coordinator; `https://` URLs verified with `tls`.
    pub async fn connect(
        list: &str,
        token_file: Option<&Path>,
        tls: &tessera_node::tls::ClientTls,
    ) -> anyhow::Result<Admin> {
        let headers = admin_token(token_file)?
            .map(|t| tessera_node::auth::headers(&t))
            .unwrap_or_default();
        let http = tls
            .apply(reqwest::Client::builder())
            .default_headers(headers)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let urls: Vec<&str> = tessera_node::state::coordinators(list)
            .map(|u| u.trim_end_matches('/'))
            .collect();
        let Some(first) = urls.first() else {
            bail!("give --coordinator ADMIN_URL (or env TESSERA_COORDINATOR)");
        };
        let mut admin = Admin {
            base: first.to_string(),
            http,
        };
        if urls.len() == 1 {
            return Ok(admin);
        }
        let mut errors = Vec::new();
        for url in &urls {
            admin.base = url.to_string();
            match admin.get::<ClusterOverview>("/cluster").await {
                Ok(v) => {
                    if let Some(raft) = v.raft {
                        let leader = raft.members.iter().find(|m| Some(m.id) == raft.leader);
                        if let Some(m) = leader {
                            admin.base = m.admin_url.trim_end_matches('/').to_string();
                        }
                    }
                    return Ok(admin);
                }
                Err(e) => errors.push(format!("{url}: {e:#}")),
            }
        }
        bail!("no coordinator answered: {}", errors.join("; "))
    }

    /// The same coordinator group, asking `url` from now on.
    pub fn at(&self, url: &str) -> Admin {
        Admin {
            base: url.trim_end_matches('/').to_string(),
            http: self.http.clone(),
        }
    }

    /// `GET path`, answered as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(self.at_path(path))).await
    }

    /// `POST path` with `body` as JSON, answered as `T`.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.at_path(path)).json(body))
            .await
    }

    /// `PUT path` with `body` as JSON, answered as `T`.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(self.http.put(self.at_path(path)).json(body))
            .await
    }

    /// `DELETE path`, answered as `T`.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.delete(self.at_path(path))).await
    }

    /// Sends `req` (with a longer timeout) and returns the status and the JSON answer, for
    /// callers that act on a refusal themselves.
    pub async fn raw(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> anyhow::Result<(reqwest::StatusCode, serde_json::Value)> {
        let r = req
            .timeout(timeout)
            .send()
            .await
            .with_context(|| format!("cannot reach the coordinator at {}", self.base))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or_default()))
    }

    /// The underlying HTTP client (token presented) and a full URL of `path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.at_path(path))
    }

    fn at_path(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `req`; a refusal becomes an error carrying the coordinator's message, an empty
    /// answer (204) reads as JSON `null`.
    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let r = req
            .send()
            .await
            .with_context(|| format!("cannot reach the coordinator at {}", self.base))?;
        let status = r.status();
        let text = r.text().await.context("reading the coordinator's answer")?;
        let v: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).context("the coordinator sent no JSON")?
        };
        if !status.is_success() {
            bail!("{}", v["error"].as_str().unwrap_or("request failed"));
        }
        serde_json::from_value(v).context("unexpected answer from the coordinator")
    }
}

/// Bytes as megabytes with one decimal, as every command prints them.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
