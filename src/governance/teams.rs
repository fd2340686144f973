//! Teams: those in the configuration (`[[teams]]`, changed by a reload) and those created with
//! `/api/teams` (kept in `teams.json` in the data directory, or in the Redis hash
//! `llmb:{llmb}:teams`, which every replica reads again each second). A name is one team: the API
//! cannot create or change a team the configuration defines.
//!
//! Lookups read an in-memory list; nothing on the request path waits for the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use fred::prelude::*;

use crate::config::TeamConfig;

const FILE_NAME: &str = "teams.json";
const REDIS_TEAMS: &str = "llmb:{llmb}:teams";
/// How often a replica reads the teams from Redis.
const REDIS_REFRESH: Duration = Duration::from_secs(1);
/// Teams the API may create, at most.
pub const MAX_TEAMS: usize = 1000;

enum Backend {
    File(PathBuf),
    Redis(Client),
}

pub struct TeamBook {
    configured: ArcSwap<Vec<Arc<TeamConfig>>>,
    stored: ArcSwap<Vec<Arc<TeamConfig>>>,
    backend: Backend,
    /// One change at a time on this replica.
    writing: tokio::sync::Mutex<()>,
}

/// Why a change to the teams was refused.
pub enum TeamError {
    Invalid(String),
    Configured(String),
    Exists(String),
    NotFound(String),
    Store(String),
}

impl TeamBook {
    pub async fn open(
        data_dir: &std::path::Path,
        redis: Option<Client>,
        configured: &[TeamConfig],
    ) -> Result<Arc<TeamBook>, String> {
        let (backend, stored) = match redis {
            Some(client) => (Backend::Redis(client), Vec::new()),
            None => {
                let path = data_dir.join(FILE_NAME);
                let stored: Vec<TeamConfig> = match std::fs::read(&path) {
                    Ok(bytes) => serde_json::from_slice(&bytes)
                        .map_err(|e| format!("{}: unreadable: {e}", path.display()))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                };
                (Backend::File(path), stored)
            }
        };
        let book = Arc::new(TeamBook {
            configured: ArcSwap::from_pointee(Vec::new()),
            stored: ArcSwap::from_pointee(stored.into_iter().map(Arc::new).collect()),
            backend,
            writing: tokio::sync::Mutex::new(()),
        });
        book.set_configured(configured);
        if let Backend::Redis(_) = &book.backend {
            if let Err(e) = book.read().await {
                tracing::warn!(error = %e, "cannot read the teams from Redis; retrying every second");
            }
            let weak = Arc::downgrade(&book);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(REDIS_REFRESH).await;
                    let Some(book) = weak.upgrade() else { return };
                    if let Err(e) = book.read().await {
                        tracing::debug!(error = %e, "cannot read the teams from Redis");
                    }
                }
            });
        }
        Ok(book)
    }

    pub fn set_configured(&self, teams: &[TeamConfig]) {
        self.configured
            .store(Arc::new(teams.iter().cloned().map(Arc::new).collect()));
    }

    /// The team with this name, configured or stored.
    pub fn get(&self, name: &str) -> Option<Arc<TeamConfig>> {
        let find = |list: &Vec<Arc<TeamConfig>>| list.iter().find(|t| t.name == name).cloned();
        find(&self.configured.load()).or_else(|| find(&self.stored.load()))
    }

    /// The team with this name, reading the stored teams again first when it is not known here
    /// (with Redis, another replica may have just created it).
    pub async fn get_fresh(&self, name: &str) -> Option<Arc<TeamConfig>> {
        if let Some(team) = self.get(name) {
            return Some(team);
        }
        self.catch_up().await;
        self.get(name)
    }

    /// The team that lists this user as a member (the first, configured ones first).
    pub fn of_member(&self, user: &str) -> Option<Arc<TeamConfig>> {
        let find = |list: &Vec<Arc<TeamConfig>>| {
            list.iter()
                .find(|t| t.members.iter().any(|m| m == user))
                .cloned()
        };
        find(&self.configured.load()).or_else(|| find(&self.stored.load()))
    }

    /// Every team, and whether it comes from the configuration.
    pub fn list(&self) -> Vec<(Arc<TeamConfig>, bool)> {
        let configured = self.configured.load();
        let stored = self.stored.load();
        let mut all: Vec<_> = configured
            .iter()
            .map(|t| (t.clone(), true))
            .chain(
                stored
                    .iter()
                    .filter(|t| !configured.iter().any(|c| c.name == t.name))
                    .map(|t| (t.clone(), false)),
            )
            .collect();
        all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        all
    }

    fn is_configured(&self, name: &str) -> bool {
        self.configured.load().iter().any(|t| t.name == name)
    }

    /// Creates a team (`replace`: false) or replaces a stored one (`replace`: true).
    pub async fn put(&self, team: TeamConfig, replace: bool) -> Result<(), TeamError> {
        crate::config::validate_team(&team).map_err(TeamError::Invalid)?;
        if self.is_configured(&team.name) {
            return Err(TeamError::Configured(team.name));
        }
        let _one = self.writing.lock().await;
        self.catch_up().await;
        let stored = self.stored.load_full();
        let exists = stored.iter().any(|t| t.name == team.name);
        match (exists, replace) {
            (true, false) => return Err(TeamError::Exists(team.name)),
            (false, true) => return Err(TeamError::NotFound(team.name)),
            (false, false) if stored.len() >= MAX_TEAMS => {
                return Err(TeamError::Invalid(format!(
                    "there are already {MAX_TEAMS} teams"
                )));
            }
            _ => {}
        }
        let mut next: Vec<Arc<TeamConfig>> = stored
            .iter()
            .filter(|t| t.name != team.name)
            .cloned()
            .collect();
        match &self.backend {
            Backend::File(_) => {
                next.push(Arc::new(team));
                self.write_file(&next).await.map_err(TeamError::Store)?;
            }
            Backend::Redis(client) => {
                let json = serde_json::to_string(&team).expect("a team serialises");
                let _: i64 = client
                    .hset(REDIS_TEAMS, (team.name.as_str(), json))
                    .await
                    .map_err(|e| TeamError::Store(e.details().to_string()))?;
                next.push(Arc::new(team));
            }
        }
        self.stored.store(Arc::new(next));
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), TeamError> {
        if self.is_configured(name) {
            return Err(TeamError::Configured(name.to_string()));
        }
        let _one = self.writing.lock().await;
        self.catch_up().await;
        let stored = self.stored.load_full();
        if !stored.iter().any(|t| t.name == name) {
            return Err(TeamError::NotFound(name.to_string()));
        }
        let next: Vec<Arc<TeamConfig>> =
            stored.iter().filter(|t| t.name != name).cloned().collect();
        match &self.backend {
            Backend::File(_) => self.write_file(&next).await.map_err(TeamError::Store)?,
            Backend::Redis(client) => {
                let _: i64 = client
                    .hdel(REDIS_TEAMS, name)
                    .await
                    .map_err(|e| TeamError::Store(e.details().to_string()))?;
            }
        }
        self.stored.store(Arc::new(next));
        Ok(())
    }

    /// With Redis: the teams as they are now (another replica may have changed them).
    async fn catch_up(&self) {
        if let Err(e) = self.read().await {
            tracing::debug!(error = %e, "cannot read the teams from Redis");
        }
    }

    async fn read(&self) -> Result<(), String> {
        let Backend::Redis(client) = &self.backend else {
            return Ok(());
        };
        let all: std::collections::HashMap<String, String> =
            tokio::time::timeout(Duration::from_secs(2), client.hgetall(REDIS_TEAMS))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|e| e.details().to_string())?;
        let mut teams: Vec<Arc<TeamConfig>> = all
            .values()
            .filter_map(|json| serde_json::from_str(json).ok())
            .map(Arc::new)
            .collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        self.stored.store(Arc::new(teams));
        Ok(())
    }

    async fn write_file(&self, teams: &[Arc<TeamConfig>]) -> Result<(), String> {
        let Backend::File(path) = &self.backend else {
            return Ok(());
        };
        let list: Vec<&TeamConfig> = teams.iter().map(|t| &**t).collect();
        let json = serde_json::to_vec_pretty(&list).expect("teams serialise");
        let tmp = path.with_extension("json.tmp");
        tokio::fs::write(&tmp, json)
            .await
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}
