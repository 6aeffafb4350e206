//! # Naming the vehicles of an answer: each tag an officer is shown (in an alert, a query's
//! results) comes with its plate, its description and whether it is reported stolen now, looked
//! up in one store query per answer. Never the owner's contact.

use crate::answers::{AlertView, VehicleLabel};
use crate::error::ApiError;
use crate::ApiState;
use std::collections::HashMap;
use tagwatch_model::TagId;

/// The labels of the registered vehicles among `tags` (an unregistered tag has none).
pub(crate) async fn labels(
    state: &ApiState,
    tags: impl IntoIterator<Item = TagId>,
) -> Result<HashMap<TagId, VehicleLabel>, ApiError> {
    let mut tags: Vec<TagId> = tags.into_iter().collect();
    tags.sort_unstable();
    tags.dedup();
    Ok(state
        .store
        .vehicles_among(&tags)
        .await?
        .into_iter()
        .map(|(vehicle, stolen)| (vehicle.tag, VehicleLabel::of(&vehicle, stolen)))
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
