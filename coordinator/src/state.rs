//! A running coordinator: the top of the context chain (edge -> [`Coordinator`] ->
//! [`Maintenance`] -> [`DataPath`]), opened from its configuration.

use crate::cluster::replicated::Fenced;
use crate::cluster::Cluster;
pub use crate::config::CoordinatorConfig;
use crate::data::DataPath;
use crate::error::ApiError;
use crate::maintenance::rebuild::RebuildReport;
use crate::maintenance::repair::Repairer;
use crate::maintenance::Maintenance;
use crate::meta::{Local, MetaStore, Metadata};
use crate::registry::Registry;
use crate::secrets::Secrets;
use std::sync::Arc;
use std::time::Duration;

/// A running coordinator: the maintenance context (which holds the data path's), the secrets,
/// this member's place in a replicated group, and the startup rebuild's outcome. The edge
/// takes this; the layers below take their own context. Fields of the layers below read
/// through `Deref` (`c.meta` is the data path's metadata, `c.repair` the maintenance layer's).
pub struct Coordinator {
    /// Background and operator-driven upkeep, over the data path.
    pub upkeep: Arc<Maintenance>,
    /// Admin token and cluster secret.
    pub secrets: Secrets,
    /// This coordinator's membership of a replicated group, if it has one.
    pub cluster: Option<Arc<Cluster>>,
    /// Outcome of the startup metadata rebuild, if one was asked for.
    pub rebuild: std::sync::Mutex<Option<RebuildReport>>,
}

impl Coordinator {
    /// Opens the metadata (a local store, or this member's replicated one) and recovers
    /// state left by a previous run: registered nodes, and writes that were in flight when
    /// it stopped (now garbage).
    pub async fn open(config: CoordinatorConfig) -> Result<Arc<Self>, ApiError> {
        let secrets = match &config.secrets {
            Some(s) => s.clone(),
            None => Secrets::load_or_create(&config.data_dir)
                .map_err(|e| ApiError::Internal(format!("secrets: {e}")))?,
        };
        let clock = Arc::new(crate::meta::Clock::new(
            config.clock_ahead.as_millis() as u64
        ));
        let (meta, maint, cluster) = match &config.cluster {
            None => {
                let (dir, engine) = (config.data_dir.join("meta"), config.engine);
                let store = blocking(move || {
                    std::fs::create_dir_all(&dir).map_err(|e| ApiError::Internal(e.to_string()))?;
                    Ok(MetaStore::open_with(&dir, &engine)?)
                })
                .await?;
                let meta = Local::serve_with(store, clock.clone());
                let orphans = meta.expire_pending(None, u64::MAX).await?;
                if orphans > 0 {
                    tracing::info!(
                        orphans,
                        "writes interrupted by a restart queued for garbage collection"
                    );
                }
                (meta.clone(), meta, None)
            }
            Some(cc) => {
                let cluster = crate::cluster::start::open(
                    &config.data_dir.join("raft"),
                    cc.clone(),
                    tessera_node::client::http_client(&secrets.cluster_secret, &config.client_tls),
                    clock.clone(),
                )
                .await
                .map_err(ApiError::from)?;
                let meta: Arc<dyn Metadata> = cluster.clone();
                let idle: Arc<dyn Metadata> = Arc::new(Fenced {
                    cluster: cluster.clone(),
                    term: 0,
                });
                tokio::spawn(expire_own_records(meta.clone(), cluster.id));
                (meta, idle, Some(cluster))
            }
        };
        let nodes = match &cluster {
            None => meta.nodes().await?,
            // Until the group answers, nodes register again with their next heartbeat.
            Some(_) => tokio::time::timeout(Duration::from_secs(2), meta.nodes())
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or_default(),
        };
        let registry = Registry::new(
            config.heartbeat_timeout,
            config.stopped_grace,
            tessera_node::client::Transport::new(
                &secrets.cluster_secret,
                &config.client_tls,
                config.raw_reads,
            ),
            nodes,
            clock,
        );
        let repair = Arc::new(Repairer::default());
        let data = Arc::new(DataPath::new(config, meta, registry, repair.clone()));
        Ok(Arc::new(Coordinator {
            upkeep: Arc::new(Maintenance::new(data, repair, maint)),
            secrets,
            cluster,
            rebuild: Default::default(),
        }))
    }

    /// The data path's context.
    pub fn data(&self) -> &Arc<DataPath> {
        &self.upkeep.data
    }
}

impl std::ops::Deref for Coordinator {
    type Target = Maintenance;

    fn deref(&self) -> &Maintenance {
        &self.upkeep
    }
}

/// Hands the writes this member left in flight before it started to garbage collection,
/// once the group answers (records written since this start are not touched).
async fn expire_own_records(meta: Arc<dyn Metadata>, id: u64) {
    let started = crate::meta::now_ms();
    loop {
        match meta.expire_pending(Some(id), started).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(
                        n,
                        "writes interrupted by a restart queued for garbage collection"
                    );
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "expiring this coordinator's old in-flight records")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs blocking work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task: {e}")))?
}
