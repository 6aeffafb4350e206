//! # Questions as data: what the API asks a tracker, in a form that crosses a network.
//!
//! In `serve` the API asks the tracker in its process; in a cluster an API node asks the shards
//! that own the partitions (NATS request–reply, `tagwatch-cluster`'s `ask` module). Both go
//! through [`Tracker::answer`], so a question means the same in either. A question about one
//! vehicle goes to its partition; one about an area goes to every partition, and their answers
//! are joined by [`join`] as one tracker would have answered.

use serde::{Deserialize, Serialize};
use tagwatch_model::{GeoBox, GeoPoint, StationId, TagId};

use crate::queries::nearest_first;
use crate::{Area, LastSeen, Location, Passage, Stop, TrackPoint, Tracker};

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
    /// A vehicle's stops in memory, for [`crate::companions_of`]: from `from_ms`, or by default
    /// as far back as memory reaches (at most `max_window_ms` before `to_ms`); none if memory
    /// does not reach back to `from_ms`.
    Stops {
        tag: TagId,
        from_ms: Option<i64>,
        to_ms: i64,
        max_window_ms: i64,
    },
    /// [`Tracker::arrivals`] at a vehicle's stops.
    Arrivals { stops: Vec<Stop>, within_ms: i64 },
    /// When each station's last frame arrived ([`Tracker::station_last_frame`]) and where the
    /// mobile readers are ([`Tracker::reader_positions`]).
    StationsHeard { stations: Vec<StationId> },
}

impl Question {
    /// The vehicle a question is about, if it is about one (asked of its partition only).
    pub fn tag(&self) -> Option<TagId> {
        match *self {
            Question::LastSeen { tag }
            | Question::Location { tag }
            | Question::Track { tag, .. }
            | Question::Stops { tag, .. } => Some(tag),
            Question::Near { .. }
            | Question::Through { .. }
            | Question::Dark { .. }
            | Question::Arrivals { .. }
            | Question::StationsHeard { .. } => None,
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
    Stops(Option<Vec<Stop>>),
    /// For each stop asked about, the tags that arrived there with it.
    Arrivals(Vec<Vec<TagId>>),
    StationsHeard {
        /// For each station asked about, when its last frame arrived (server time).
        last_frames: Vec<Option<i64>>,
        /// Mobile readers: station, time of its latest fix, where.
        readers: Vec<(StationId, i64, GeoPoint)>,
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
            Question::Stops {
                tag,
                from_ms,
                to_ms,
                max_window_ms,
            } => {
                let from_ms = match from_ms {
                    Some(from_ms) => from_ms,
                    // With nothing in memory yet, no stops.
                    None => match self.covered_from() {
                        Some(covered) => covered.max(to_ms - max_window_ms),
                        None => return Answer::Stops(Some(Vec::new())),
                    },
                };
                Answer::Stops(
                    self.covers(from_ms)
                        .then(|| self.stops(tag, from_ms, to_ms)),
                )
            }
            Question::Arrivals {
                ref stops,
                within_ms,
            } => Answer::Arrivals(self.arrivals(stops, within_ms)),
            Question::StationsHeard { ref stations } => Answer::StationsHeard {
                last_frames: stations
                    .iter()
                    .map(|&id| self.station_last_frame(id))
                    .collect(),
                readers: self.reader_positions(),
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
        (Question::Arrivals { stops, .. }, Answer::Arrivals(mut all)) => {
            if all.len() != stops.len() {
                return None;
            }
            for answer in answers {
                let Answer::Arrivals(more) = answer else {
                    return None;
                };
                if more.len() != all.len() {
                    return None;
                }
                for (here, also) in all.iter_mut().zip(more) {
                    here.extend(also);
                    here.sort_unstable();
                    here.dedup();
                }
            }
            Answer::Arrivals(all)
        }
        // A station's last frame reached its own partition (every frame does), some of them
        // others too: the latest. A reader's latest fix, from whichever partition had it.
        (
            Question::StationsHeard { stations },
            Answer::StationsHeard {
                mut last_frames,
                readers,
            },
        ) => {
            if last_frames.len() != stations.len() {
                return None;
            }
            let mut latest: std::collections::BTreeMap<StationId, (i64, GeoPoint)> =
                readers.into_iter().map(|(s, at, p)| (s, (at, p))).collect();
            for answer in answers {
                let Answer::StationsHeard {
                    last_frames: theirs,
                    readers,
                } = answer
                else {
                    return None;
                };
                if theirs.len() != last_frames.len() {
                    return None;
                }
                for (mine, their) in last_frames.iter_mut().zip(theirs) {
                    *mine = (*mine).max(their);
                }
                for (station, at, position) in readers {
                    let entry = latest.entry(station).or_insert((at, position));
                    if at > entry.0 {
                        *entry = (at, position);
                    }
                }
            }
            Answer::StationsHeard {
                last_frames,
                readers: latest.into_iter().map(|(s, (at, p))| (s, at, p)).collect(),
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
            | (Question::Stops { .. }, Answer::Stops(_))
            | (Question::Arrivals { .. }, Answer::Arrivals(_))
            | (Question::StationsHeard { .. }, Answer::StationsHeard { .. })
    )
}
