//! The station key registry the gateway verifies MACs with: loaded from the store at start and
//! updated by the API when a station is provisioned.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tagwatch_model::{StationId, StationKey};

/// Shared map of station id → key.
///
/// A std `RwLock`, not a tokio one: no `.await` is ever held under it, and every frame takes a
/// read lock for one hash lookup.
#[derive(Debug, Clone, Default)]
pub struct StationKeys {
    inner: Arc<RwLock<HashMap<StationId, Arc<StationKey>>>>,
}

impl StationKeys {
    pub fn insert(&self, station: StationId, key: StationKey) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        map.insert(station, Arc::new(key));
    }

    /// Replaces every key at once (a gateway of a cluster reading the store again): a station
    /// removed from the store is no longer heard.
    pub fn replace_all(&self, keys: impl IntoIterator<Item = (StationId, StationKey)>) {
        let fresh: HashMap<StationId, Arc<StationKey>> =
            keys.into_iter().map(|(s, k)| (s, Arc::new(k))).collect();
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    pub fn get(&self, station: StationId) -> Option<Arc<StationKey>> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(&station).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
