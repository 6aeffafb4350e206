//! # Where the API's questions about live state go
//!
//! In `serve` the tracker is in the process: a question is a closure run by the task that owns
//! it. In a cluster an API node has no tracker: questions go as data
//! ([`tagwatch_tracker::questions`]) to the shards that own the partitions, and an area question
//! may come back without the answer of a partition that did not answer in time ([`Gathered`]).
//! Every question the API asks about live state goes through here, as data, in `serve` too.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tagwatch_tracker::questions::{Answer, Question};
use tagwatch_tracker::Query;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::ApiState;

/// The live state behind an API.
#[derive(Debug, Clone)]
pub enum Live {
    /// `serve`: questions answered by the task that owns the tracker.
    Tracker(mpsc::Sender<Query>),
    /// A cluster's API node: questions asked of the shards.
    Shards(Arc<dyn Shards>),
}

/// Asks a cluster's shards (implemented in `tagwatch-cluster`).
pub trait Shards: Send + Sync + fmt::Debug {
    /// Asks the partition of a vehicle's question, or every partition of an area's, and joins
    /// the answers; `Err` says what could not be asked or answered.
    fn ask(&self, question: Question) -> BoxFuture<'static, Result<Gathered, String>>;
}

/// An answer, joined from the partitions that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    pub answer: Answer,
    /// Partitions that did not answer in time (their vehicles are missing from the answer).
    pub missing: Vec<u16>,
}

/// Asks a question of the tracker or the shards.
pub(crate) async fn ask(state: &ApiState, question: Question) -> Result<Gathered, ApiError> {
    match &state.live {
        Live::Tracker(queries) => {
            // Answered by the task that owns the tracker, between its frames.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let ask = move |tracker: &tagwatch_tracker::Tracker| {
                let _ = tx.send(tracker.answer(&question));
            };
            queries
                .send(Query(Box::new(ask)))
                .await
                .map_err(|_| ApiError::Unavailable)?;
            let answer = rx.await.map_err(|_| ApiError::Unavailable)?;
            Ok(Gathered {
                answer,
                missing: Vec::new(),
            })
        }
        Live::Shards(shards) => {
            let gathered = shards.ask(question).await.map_err(ApiError::Unanswered)?;
            Ok(gathered)
        }
    }
}

/// A vehicle's question: its partition's answer, or 503 if it did not come.
async fn ask_of_vehicle(state: &ApiState, question: Question) -> Result<Answer, ApiError> {
    let gathered = ask(state, question).await?;
    if let Some(partition) = gathered.missing.first() {
        return Err(ApiError::Unanswered(format!(
            "partition {partition}, which holds this vehicle, did not answer in time"
        )));
    }
    Ok(gathered.answer)
}

fn wrong_kind(answer: &Answer) -> ApiError {
    ApiError::internal(format!("an answer of another kind: {answer:?}"))
}

/// Where a vehicle was last placed.
pub(crate) async fn last_seen(
    state: &ApiState,
    tag: tagwatch_model::TagId,
) -> Result<Option<tagwatch_tracker::LastSeen>, ApiError> {
    match ask_of_vehicle(state, Question::LastSeen { tag }).await? {
        Answer::LastSeen(found) => Ok(found),
        other => Err(wrong_kind(&other)),
    }
}

/// Where a vehicle is placed now, with its movement.
pub(crate) async fn location(
    state: &ApiState,
    tag: tagwatch_model::TagId,
) -> Result<Option<tagwatch_tracker::Location>, ApiError> {
    match ask_of_vehicle(state, Question::Location { tag }).await? {
        Answer::Location(found) => Ok(found),
        other => Err(wrong_kind(&other)),
    }
}

/// A vehicle's visits in memory between two times.
pub(crate) async fn track(
    state: &ApiState,
    tag: tagwatch_model::TagId,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<tagwatch_tracker::TrackPoint>, ApiError> {
    match ask_of_vehicle(
        state,
        Question::Track {
            tag,
            from_ms,
            to_ms,
        },
    )
    .await?
    {
        Answer::Track(points) => Ok(points),
        other => Err(wrong_kind(&other)),
    }
}

/// A vehicle's stops in memory (see [`Question::Stops`]); `None` if memory does not reach back
/// to `from_ms`.
pub(crate) async fn stops(
    state: &ApiState,
    tag: tagwatch_model::TagId,
    from_ms: Option<i64>,
    to_ms: i64,
    max_window_ms: i64,
) -> Result<Option<Vec<tagwatch_tracker::Stop>>, ApiError> {
    let question = Question::Stops {
        tag,
        from_ms,
        to_ms,
        max_window_ms,
    };
    match ask_of_vehicle(state, question).await? {
        Answer::Stops(stops) => Ok(stops),
        other => Err(wrong_kind(&other)),
    }
}

/// An area question's answer as one value and the partitions missing from it.
pub(crate) async fn area(state: &ApiState, question: Question) -> Result<Gathered, ApiError> {
    let gathered = ask(state, question).await?;
    if !matches!(
        gathered.answer,
        Answer::Near(_)
            | Answer::Through { .. }
            | Answer::Dark { .. }
            | Answer::Arrivals(_)
            | Answer::StationsHeard { .. }
    ) {
        return Err(wrong_kind(&gathered.answer));
    }
    Ok(gathered)
}
