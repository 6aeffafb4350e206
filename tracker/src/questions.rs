//! # Questions as data: what the API asks a tracker, in a form that crosses a network.
//!
//! In `serve` the API asks the tracker in its process; in a cluster an API node asks the shards
//! that own the partitions (NATS request–reply, `tagwatch-cluster`'s `ask` module). Both go
//! through [`Tracker::answer`], so a question means the same in either. A question about one
//! vehicle goes to its partition; one about an area goes to every partition, and their answers
//! are joined by [`join`] as one tracker would have answered.

use serde::{Deserialize, Serialize};
use tagwatch_model::{GeoBox, GeoPoint, TagId};

use crate::queries::nearest_first;
use crate::{Area, LastSeen, Location, Passage, TrackPoint, Tracker};

/// A question about live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
pub enum Question {
    /// [`Tracker::last_seen`].
    LastSeen { tag: TagId },
    /// [`Tracker::location`].
    Location { tag: TagId },
    /// [`Tracker::track`].
    Track {
        tag: TagId,
        from_ms: i64,
        to_ms: i64,
    },
    /// [`Tracker::tags_near`].
    Near {
        center: GeoPoint,
        radius_m: f64,
        since_ms: i64,
        limit: usize,
    },
    /// [`Tracker::tags_through`] for the part of the window memory covers, and whether it
    /// covers all of it.
    Through {
        area: GeoBox,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    },
    /// [`Tracker::dark_stolen`], for [`crate::dens_of`].
    Dark { now_ms: i64, dark_for_ms: i64 },
}

impl Question {
    /// The vehicle a question is about, if it is about one (asked of its partition only).
    pub fn tag(&self) -> Option<TagId> {
        match *self {
            Question::LastSeen { tag }
            | Question::Location { tag }
            | Question::Track { tag, .. } => Some(tag),
            Question::Near { .. } | Question::Through { .. } | Question::Dark { .. } => None,
        }
    }
}

/// A tracker's answer to a [`Question`] of the same kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", content = "of", rename_all = "snake_case")]
pub enum Answer {
    LastSeen(Option<LastSeen>),
    Location(Option<Location>),
    Track(Vec<TrackPoint>),
    /// Nearest first: tag, where, metres away.
    Near(Vec<(TagId, LastSeen, f64)>),
    Through {
        /// Whether memory covers the whole window (else the store answers for the rest).
        covered: bool,
        passages: Vec<Passage>,
    },
    Dark {
        /// The latitude the tracker's plane is centred on (its first station's).
        reference_lat: Option<f64>,
        tags: Vec<(TagId, LastSeen)>,
    },
}

impl Tracker {
    /// Answers a question from memory.
    pub fn answer(&self, question: &Question) -> Answer {
        match *question {
            Question::LastSeen { tag } => Answer::LastSeen(self.last_seen(tag)),
            Question::Location { tag } => Answer::Location(self.location(tag)),
            Question::Track {
                tag,
                from_ms,
                to_ms,
            } => Answer::Track(self.track(tag, from_ms, to_ms)),
            Question::Near {
                center,
                radius_m,
                since_ms,
                limit,
            } => Answer::Near(self.tags_near(center, radius_m, since_ms, limit)),
            Question::Through {
                area,
                from_ms,
                to_ms,
                limit,
            } => {
                // Memory answers for the part of the window it covers, the whole if it can.
                let start = self.covered_from().map(|c| c.max(from_ms));
                let passages = start
                    .filter(|&start| start <= to_ms)
                    .map(|start| self.tags_through(&Area::Box(area), start, to_ms, limit))
                    .unwrap_or_default();
                Answer::Through {
                    covered: self.covers(from_ms),
                    passages,
                }
            }
            Question::Dark {
                now_ms,
                dark_for_ms,
            } => Answer::Dark {
                reference_lat: self.spatial.reference_lat(),
                tags: self.dark_stolen(now_ms, dark_for_ms),
            },
        }
    }
}

/// Several trackers' answers to one question (each owning other vehicles) joined as one tracker
/// holding them all would have answered; `None` when an answer is of another kind, or there is
/// none.
pub fn join(question: &Question, answers: Vec<Answer>) -> Option<Answer> {
    let mut answers = answers.into_iter();
    let first = answers.next()?;
    let joined = match (question, first) {
        (Question::Near { limit, .. }, Answer::Near(mut all)) => {
            for answer in answers {
                let Answer::Near(more) = answer else {
                    return None;
                };
                all.extend(more);
            }
            all.sort_by(nearest_first);
            all.truncate(*limit);
            Answer::Near(all)
        }
        (
            Question::Through { limit, .. },
            Answer::Through {
                mut covered,
                passages: mut all,
            },
        ) => {
            for answer in answers {
                let Answer::Through {
                    covered: also,
                    passages,
                } = answer
                else {
                    return None;
                };
                covered &= also;
                all.extend(passages);
            }
            all.sort_by_key(|p| p.tag);
            all.truncate(*limit);
            Answer::Through {
                covered,
                passages: all,
            }
        }
        (
            Question::Dark { .. },
            Answer::Dark {
                mut reference_lat,
                tags: mut all,
            },
        ) => {
            for answer in answers {
                let Answer::Dark {
                    reference_lat: theirs,
                    tags,
                } = answer
                else {
                    return None;
                };
                reference_lat = reference_lat.or(theirs);
                all.extend(tags);
            }
            all.sort_by_key(|(tag, _)| *tag);
            Answer::Dark {
                reference_lat,
                tags: all,
            }
        }
        // A vehicle's question has one partition, so one answer.
        (_, answer) if answers.len() == 0 && same_kind(question, &answer) => answer,
        _ => return None,
    };
    Some(joined)
}

fn same_kind(question: &Question, answer: &Answer) -> bool {
    matches!(
        (question, answer),
        (Question::LastSeen { .. }, Answer::LastSeen(_))
            | (Question::Location { .. }, Answer::Location(_))
            | (Question::Track { .. }, Answer::Track(_))
            | (Question::Near { .. }, Answer::Near(_))
            | (Question::Through { .. }, Answer::Through { .. })
            | (Question::Dark { .. }, Answer::Dark { .. })
    )
}
