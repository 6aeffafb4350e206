//! # Naming the vehicles of an answer: each tag an officer is shown (in an alert, a query's
//! results) comes with its plate, its description and whether it is reported stolen now. Never
//! the owner's contact.
//!
//! A "near" answer names hundreds of tags, and naming them from the store on every query cost
//! more than the query itself (near at 128 clients fell from 2,908 to 384 requests/s). So the
//! API keeps what it learned: descriptions change rarely (a repaint, a new plate), so each is
//! kept for [`DESCRIPTION_TTL`] and dropped at once when this node edits it; the stolen list is
//! read whole (one query for every open case) at most every [`STOLEN_TTL`] and dropped at once
//! when this node opens or closes a case. Another API node's change shows here within those
//! times.

use crate::answers::{AlertView, VehicleLabel};
use crate::error::ApiError;
use crate::ApiState;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tagwatch_model::TagId;

/// How long a vehicle's plate and description are trusted before being read again.
const DESCRIPTION_TTL: Duration = Duration::from_secs(60);
/// How long the stolen list is trusted before being read again.
const STOLEN_TTL: Duration = Duration::from_secs(2);
/// Most descriptions kept (about 100 bytes each); beyond, the oldest half is dropped.
const MAX_DESCRIPTIONS: usize = 500_000;

/// A vehicle's look, as read from the store (`None`: not registered).
type Description = Option<(String, String, String, String)>;

/// What the API knows of vehicles' descriptions and of the stolen list.
#[derive(Debug, Default)]
pub struct Identities {
    descriptions: Mutex<HashMap<TagId, (Description, Instant)>>,
    stolen: Mutex<Option<(Arc<HashSet<TagId>>, Instant)>>,
}

impl Identities {
    /// This node changed a vehicle's record: read it again next time.
    pub fn forget(&self, tag: TagId) {
        self.lock_descriptions().remove(&tag);
    }

    /// This node opened or closed a case: read the stolen list again next time.
    pub fn stolen_changed(&self) {
        *self.stolen.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn lock_descriptions(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<TagId, (Description, Instant)>> {
        self.descriptions.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn stolen_set(&self, state: &ApiState) -> Result<Arc<HashSet<TagId>>, ApiError> {
        if let Some((set, at)) = &*self.stolen.lock().unwrap_or_else(|e| e.into_inner()) {
            if at.elapsed() < STOLEN_TTL {
                return Ok(set.clone());
            }
        }
        let set: Arc<HashSet<TagId>> = Arc::new(
            state
                .store
                .open_cases()
                .await?
                .into_iter()
                .map(|(tag, _)| tag)
                .collect(),
        );
        *self.stolen.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((set.clone(), Instant::now()));
        Ok(set)
    }
}

/// The labels of the registered vehicles among `tags` (an unregistered tag has none).
pub(crate) async fn labels(
    state: &ApiState,
    tags: impl IntoIterator<Item = TagId>,
) -> Result<HashMap<TagId, VehicleLabel>, ApiError> {
    let ids = &state.identities;
    let mut tags: Vec<TagId> = tags.into_iter().collect();
    tags.sort_unstable();
    tags.dedup();
    if tags.is_empty() {
        return Ok(HashMap::new());
    }
    let mut known: HashMap<TagId, Description> = HashMap::with_capacity(tags.len());
    let mut missing = Vec::new();
    {
        let cache = ids.lock_descriptions();
        for tag in &tags {
            match cache.get(tag) {
                Some((description, at)) if at.elapsed() < DESCRIPTION_TTL => {
                    known.insert(*tag, description.clone());
                }
                _ => missing.push(*tag),
            }
        }
    }
    if !missing.is_empty() {
        let mut found: HashMap<TagId, Description> = missing.iter().map(|t| (*t, None)).collect();
        for vehicle in state.store.vehicles_among(&missing).await? {
            found.insert(
                vehicle.tag,
                Some((vehicle.plate, vehicle.make, vehicle.model, vehicle.colour)),
            );
        }
        let now = Instant::now();
        let mut cache = ids.lock_descriptions();
        if cache.len() + found.len() > MAX_DESCRIPTIONS {
            let cutoff = now.checked_sub(DESCRIPTION_TTL / 2).unwrap_or(now);
            cache.retain(|_, (_, at)| *at > cutoff);
            if cache.len() + found.len() > MAX_DESCRIPTIONS {
                cache.clear();
            }
        }
        for (tag, description) in found {
            cache.insert(tag, (description.clone(), now));
            known.insert(tag, description);
        }
    }
    let stolen = ids.stolen_set(state).await?;
    Ok(known
        .into_iter()
        .filter_map(|(tag, description)| {
            let (plate, make, model, colour) = description?;
            Some((
                tag,
                VehicleLabel {
                    plate,
                    make,
                    model,
                    colour,
                    stolen: stolen.contains(&tag),
                },
            ))
        })
        .collect())
}

/// Gives each tag's alert its vehicle's label.
pub(crate) async fn label_alerts(
    state: &ApiState,
    views: &mut [AlertView],
) -> Result<(), ApiError> {
    let found = labels(state, views.iter().filter_map(|v| v.tag.map(TagId))).await?;
    for view in views {
        if let Some(tag) = view.tag {
            view.vehicle = found.get(&TagId(tag)).cloned();
        }
    }
    Ok(())
}
