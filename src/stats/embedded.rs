//! The embedded store: counters and the request log in memory, persisted as one JSON file under the
//! data directory. Writes go to a temporary file that is synced and renamed over the old one, so a
//! crash leaves either the previous or the new file, never a torn one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::{Counters, Delta, Granularity, Retention};
use crate::domain::RequestRecord;

const FILE_NAME: &str = "stats.json";

#[derive(Default, Serialize, Deserialize)]
struct Data {
    minutes: BTreeMap<u64, HashMap<String, Counters>>,
    hours: BTreeMap<u64, HashMap<String, Counters>>,
    recent: VecDeque<RequestRecord>,
}

pub struct EmbeddedStore {
    path: PathBuf,
    recent_cap: usize,
    retention: Retention,
    data: Mutex<Data>,
    dirty: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl EmbeddedStore {
    pub fn open(
        dir: &Path,
        recent_cap: usize,
        retention: Retention,
    ) -> Result<EmbeddedStore, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        let data = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(data) => data,
                Err(e) => {
                    let aside = path.with_extension("json.unreadable");
                    tracing::error!(file = %path.display(), error = %e, moved_to = %aside.display(), "stats file unreadable; starting empty");
                    let _ = std::fs::rename(&path, &aside);
                    Data::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        // Fail now rather than at the first flush if the directory is not writable.
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"")
            .map_err(|e| format!("data directory {} is not writable: {e}", dir.display()))?;
        let _ = std::fs::remove_file(probe);
        Ok(EmbeddedStore {
            path,
            recent_cap,
            retention,
            data: Mutex::new(data),
            dirty: AtomicBool::new(false),
            last_error: Mutex::new(None),
        })
    }

    pub fn recent_cap(&self) -> usize {
        self.recent_cap
    }

    pub async fn apply(&self, delta: &Delta) -> Result<(), String> {
        {
            let mut data = self.data.lock().unwrap();
            for ((g, bucket, dim), c) in &delta.counters {
                let series = match g {
                    Granularity::Minute => &mut data.minutes,
                    Granularity::Hour => &mut data.hours,
                };
                series
                    .entry(*bucket)
                    .or_default()
                    .entry(dim.clone())
                    .or_default()
                    .merge(c);
            }
            for r in &delta.recent {
                data.recent.push_front(r.clone());
            }
            data.recent.truncate(self.recent_cap);
            let now_minute = crate::clock::now_ms() / 60_000;
            let keep_minutes = now_minute.saturating_sub(self.retention.minutes);
            data.minutes = data.minutes.split_off(&keep_minutes);
            let keep_hours = (now_minute / 60).saturating_sub(self.retention.hours);
            data.hours = data.hours.split_off(&keep_hours);
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes the file if anything changed since the last write.
    pub async fn persist_now(&self) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let bytes = {
            let data = self.data.lock().unwrap();
            serde_json::to_vec(&*data).expect("stats serialise")
        };
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(e) = &error {
            tracing::error!(file = %self.path.display(), error = %e, "cannot write the stats file");
            self.dirty.store(true, Ordering::Release);
        }
        *self.last_error.lock().unwrap() = error;
    }

    pub fn counters(
        &self,
        g: Granularity,
        buckets: std::ops::RangeInclusive<u64>,
    ) -> Vec<(u64, HashMap<String, Counters>)> {
        let data = self.data.lock().unwrap();
        let series = match g {
            Granularity::Minute => &data.minutes,
            Granularity::Hour => &data.hours,
        };
        series
            .range(buckets)
            .map(|(b, dims)| (*b, dims.clone()))
            .collect()
    }

    pub fn recent(&self, limit: usize) -> Vec<RequestRecord> {
        self.data
            .lock()
            .unwrap()
            .recent
            .iter()
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn health(&self) -> (bool, String) {
        match &*self.last_error.lock().unwrap() {
            None => (true, format!("file {}", self.path.display())),
            Some(e) => (false, format!("cannot write {}: {e}", self.path.display())),
        }
    }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}
