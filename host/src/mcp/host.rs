//! What every session of one `subagent mcp` process shares.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::Peer;
use rmcp::service::RoleServer;
use tokio::sync::watch;

use super::tools::Listed;
use crate::bundle::Registries;
use crate::store::Store;
use crate::task::TaskStatus;
use crate::tasks::TaskManager;

/// How often the registries are looked at for added, removed or changed
/// subagents (`notifications/tools/list_changed`).
const REGISTRY_POLL: Duration = Duration::from_secs(1);

/// What every session of one `subagent mcp` process shares: the task
/// manager (so concurrency limits hold across all clients, and every task is
/// in the store), the allowed workspace and the registries.
pub struct Host {
    pub(super) manager: TaskManager,
    pub(super) store: Option<Arc<Store>>,
    /// The default workspace, canonical: a call may name one inside it (or
    /// inside the client's roots, when it offers them).
    pub(super) workspace: PathBuf,
    pub(super) agents: Vec<PathBuf>,
    /// Bumped whenever the registries' subagents change.
    pub(super) registry: watch::Sender<u64>,
    /// Sessions of clients that negotiated a protocol with sessions (before
    /// 2026-07-28): they get `tools/list_changed` unasked.
    pub(super) sessions: Mutex<Vec<Peer<RoleServer>>>,
    /// Foreground `task` calls in flight: cancelled when their client goes.
    pub(super) foreground: Mutex<HashSet<String>>,
}

impl Host {
    /// A host over `manager`; `workspace` must exist.
    pub fn new(
        manager: TaskManager,
        store: Option<Arc<Store>>,
        workspace: &Path,
        agents: Vec<PathBuf>,
    ) -> std::io::Result<Arc<Host>> {
        let workspace = std::fs::canonicalize(workspace).map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("workspace {}: {err}", workspace.display()),
            )
        })?;
        let (registry, _) = watch::channel(0);
        Ok(Arc::new(Host {
            manager,
            store,
            workspace,
            agents,
            registry,
            sessions: Mutex::new(Vec::new()),
            foreground: Mutex::new(HashSet::new()),
        }))
    }

    pub fn manager(&self) -> &TaskManager {
        &self.manager
    }

    pub(super) fn registries(&self, workspace: &Path) -> Registries {
        Registries::standard(&self.agents, workspace)
    }

    /// The subagents `task` can launch in the default workspace.
    pub(super) fn listed(&self) -> Vec<Listed> {
        self.registries(&self.workspace)
            .entries()
            .into_iter()
            .filter(|entry| !entry.shadowed)
            .filter_map(|entry| entry.bundle.ok())
            .map(|bundle| Listed {
                name: bundle.manifest.name.clone(),
                description: bundle.manifest.description.clone(),
            })
            .collect()
    }

    /// What the registries hold, to notice a change: each entry's name, path
    /// and the modification time of what defines it.
    fn registry_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for entry in self.registries(&self.workspace).entries() {
            entry.dir.hash(&mut hasher);
            entry.shadowed.hash(&mut hasher);
            let defining = if entry.dir.is_dir() {
                entry.dir.join(crate::manifest::MANIFEST_FILE)
            } else {
                entry.dir.clone()
            };
            if let Ok(meta) = std::fs::metadata(&defining) {
                meta.modified().ok().hash(&mut hasher);
                meta.len().hash(&mut hasher);
            }
            match &entry.bundle {
                Ok(bundle) => {
                    bundle.manifest.name.hash(&mut hasher);
                    bundle.manifest.description.hash(&mut hasher);
                }
                Err(err) => err.to_string().hash(&mut hasher),
            }
        }
        hasher.finish()
    }

    /// Watch the registries until the process ends: on a change, bump
    /// [`Host::registry`] and tell every session-mode client.
    pub fn watch_registries(self: &Arc<Self>) {
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let Some(strong) = host.upgrade() else { return };
                let fingerprint = {
                    let strong = strong.clone();
                    tokio::task::spawn_blocking(move || strong.registry_fingerprint())
                        .await
                        .unwrap_or_default()
                };
                if last.is_some_and(|last| last != fingerprint) {
                    strong.registry.send_modify(|generation| *generation += 1);
                    let peers: Vec<Peer<RoleServer>> = {
                        let mut sessions = strong.sessions.lock().unwrap();
                        sessions.retain(|peer| !peer.is_transport_closed());
                        sessions.clone()
                    };
                    for peer in peers {
                        let _ = peer.notify_tool_list_changed().await;
                    }
                }
                last = Some(fingerprint);
                drop(strong);
                tokio::time::sleep(REGISTRY_POLL).await;
            }
        });
    }

    /// The client went away: its foreground tasks are cancelled (nobody
    /// waits for their result); background ones run on to their end.
    pub fn cancel_foreground(&self) {
        let ids: Vec<String> = self.foreground.lock().unwrap().drain().collect();
        for id in ids {
            let _ = self.manager.cancel(&id);
        }
    }

    /// Wait until every task of this process has ended.
    pub async fn drain(&self) {
        let live: Vec<String> = self
            .manager
            .list(&crate::tasks::TaskFilter {
                statuses: Some(vec![TaskStatus::Queued, TaskStatus::Running]),
                ..Default::default()
            })
            .into_iter()
            .map(|task| task.id)
            .collect();
        if !live.is_empty() {
            let _ = self.manager.await_tasks(&live, None).await;
        }
    }
}
