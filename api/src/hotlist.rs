//! # Hotlist import: a force's national stolen-vehicle list, uploaded as CSV, opens or updates
//! theft cases in one step (`POST /api/v1/hotlist`), and entries that lapse are closed by a
//! sweep. Beside the owners' theft reports (`handlers::thefts`), this is how the stolen list
//! fills.
//!
//! The file: a header naming its columns (any order): `plate` and/or `tag`, `reason`,
//! `reported_at`, and optionally `expires_at`. Times are RFC 3339 or a date (`2026-12-01`,
//! midnight UTC; an expiry date means to the end of that day). Each line is checked on its own;
//! the answer lists every refused line with its field and why, and what each other line did.

use crate::audit::audit;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{tell_tracker, ApiState};
use axum::body::Bytes;
use axum::extract::State;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tagwatch_model::time::{from_rfc3339, now_ms};
use tagwatch_model::{Role, TagId};
use tagwatch_store::{HotlistEntry, HotlistOutcome, Listed};
use tagwatch_tracker::{Command, LastSeen};
use tokio_util::sync::CancellationToken;

/// Largest list accepted in one upload.
pub const MAX_HOTLIST_BYTES: usize = 4 << 20;
/// Most lines in one upload.
pub const MAX_HOTLIST_LINES: usize = 50_000;
/// Longest reason kept.
const MAX_REASON_CHARS: usize = 200;
/// How often lapsed entries are looked for.
const EXPIRY_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// `POST /api/v1/hotlist`: what an import did.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct HotlistAnswer {
    /// Lines read (the header not counted).
    pub lines: usize,
    pub opened: usize,
    pub updated: usize,
    /// Already reported stolen by an owner or the police: left as they are.
    pub already_reported: usize,
    /// What each accepted line did.
    pub applied: Vec<AppliedLine>,
    /// Every refused line, with why.
    pub refused: Vec<RefusedLine>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AppliedLine {
    pub line: u64,
    pub tag: u32,
    pub case_id: i64,
    /// `opened`, `updated` or `already_reported`.
    pub outcome: &'static str,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RefusedLine {
    pub line: u64,
    /// The column at fault, when one is.
    pub field: Option<&'static str>,
    pub message: String,
}

/// The columns a list may have.
const COLUMNS: [&str; 5] = ["plate", "tag", "reason", "reported_at", "expires_at"];

/// Where each known column is in the file's header.
struct Header(HashMap<&'static str, usize>);

impl Header {
    fn read(header: &csv::StringRecord) -> Result<Self, ApiError> {
        let mut at = HashMap::new();
        for (i, name) in header.iter().enumerate() {
            let name = name
                .trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase();
            let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
                return Err(ApiError::BadBody(format!(
                    "unknown column {name:?}: a list has the columns {}",
                    COLUMNS.join(", ")
                )));
            };
            if at.insert(*known, i).is_some() {
                return Err(ApiError::BadBody(format!("column {name:?} appears twice")));
            }
        }
        for required in ["reason", "reported_at"] {
            if !at.contains_key(required) {
                return Err(ApiError::BadBody(format!(
                    "the header has no {required:?} column"
                )));
            }
        }
        if !at.contains_key("plate") && !at.contains_key("tag") {
            return Err(ApiError::BadBody(
                "the header needs a \"plate\" or a \"tag\" column".into(),
            ));
        }
        Ok(Header(at))
    }

    fn get<'r>(&self, record: &'r csv::StringRecord, column: &str) -> &'r str {
        self.0
            .get(column)
            .and_then(|&i| record.get(i))
            .map_or("", str::trim)
    }
}

/// A line's fault: its column and why.
type Fault = (Option<&'static str>, String);

fn field(name: &'static str, message: impl Into<String>) -> Fault {
    (Some(name), message.into())
}

/// A time as lists write it: RFC 3339, or a date meaning midnight UTC (`end_of_day`: the
/// midnight after it, for an expiry date).
fn list_time(name: &'static str, text: &str, end_of_day: bool) -> Result<i64, Fault> {
    if let Ok(ms) = from_rfc3339(text) {
        return Ok(ms);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| {
        field(
            name,
            format!("{name} {text:?} is neither an RFC 3339 time nor a date like 2026-12-01"),
        )
    })?;
    let date = if end_of_day {
        date.next_day().unwrap_or(date)
    } else {
        date
    };
    Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// Checks one line; `now` for times that may not be in the future (or past).
fn entry(header: &Header, record: &csv::StringRecord, now: i64) -> Result<HotlistEntry, Fault> {
    let tag = header.get(record, "tag");
    let plate = header.get(record, "plate");
    // A tag, when given, names the vehicle; the plate is then only for the reader of the file.
    let vehicle = if !tag.is_empty() {
        let tag = tag.parse::<u32>().ok().filter(|t| *t != 0).ok_or_else(|| {
            field(
                "tag",
                format!("tag {tag:?} is not a number in 1..=4294967295"),
            )
        })?;
        Listed::Tag(TagId(tag))
    } else if !plate.is_empty() {
        if plate.chars().count() > 20 || tagwatch_model::plate_key(plate).chars().count() < 2 {
            return Err(field(
                "plate",
                format!("plate {plate:?} is not a plate (2-20 characters, two letters or digits)"),
            ));
        }
        Listed::Plate(plate.to_owned())
    } else {
        return Err((None, "the line gives neither a plate nor a tag".into()));
    };
    let reason = header.get(record, "reason");
    if reason.is_empty() {
        return Err(field("reason", "reason is empty"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(field(
            "reason",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    let reported_at = list_time("reported_at", header.get(record, "reported_at"), false)?;
    if reported_at > now {
        return Err(field("reported_at", "reported_at is in the future"));
    }
    let expires_at = match header.get(record, "expires_at") {
        "" => None,
        text => Some(list_time("expires_at", text, true)?),
    };
    if expires_at.is_some_and(|e| e <= now) {
        return Err(field("expires_at", "the entry has already expired"));
    }
    Ok(HotlistEntry {
        vehicle,
        reported_at_ms: reported_at,
        expires_at_ms: expires_at,
        note: format!("hotlist: {reason}"),
    })
}

/// `POST /api/v1/hotlist` (admin, dispatcher), the body a CSV file.
pub async fn import(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<HotlistAnswer>, ApiError> {
    caller.require(&[Role::Admin, Role::Dispatcher])?;
    let body = body.map_err(|_| ApiError::TooLarge)?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadBody(format!("the list is not UTF-8 text: {e}")))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = Header::read(
        reader
            .headers()
            .map_err(|e| ApiError::BadBody(format!("the list's header cannot be read: {e}")))?,
    )?;
    let now = now_ms();
    let mut answer = HotlistAnswer::default();
    let mut lines = Vec::new();
    let mut entries = Vec::new();
    // The first line naming each vehicle; a later one is refused, not silently applied twice.
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        answer.lines += 1;
        if answer.lines > MAX_HOTLIST_LINES {
            return Err(ApiError::BadBody(format!(
                "the list has more than {MAX_HOTLIST_LINES} lines: split it"
            )));
        }
        let line = answer.lines as u64 + 1;
        let checked = record
            .map_err(|e| (None, format!("unreadable CSV: {e}")))
            .and_then(|record| entry(&header, &record, now));
        let refused = match checked {
            Ok(entry) => {
                let key = match &entry.vehicle {
                    Listed::Tag(tag) => format!("tag {tag}"),
                    Listed::Plate(plate) => format!("plate {}", tagwatch_model::plate_key(plate)),
                };
                match first_line.get(&key) {
                    Some(first) => (None, format!("the same vehicle ({key}) as line {first}")),
                    None => {
                        first_line.insert(key, line);
                        lines.push(line);
                        entries.push(entry);
                        continue;
                    }
                }
            }
            Err(fault) => fault,
        };
        answer.refused.push(RefusedLine {
            line,
            field: refused.0,
            message: refused.1,
        });
    }
    let outcomes = state.store.apply_hotlist(&entries).await?;
    for ((line, entry), outcome) in lines.iter().zip(&entries).zip(outcomes) {
        let (tag, case, name) = match outcome {
            HotlistOutcome::Opened(tag, case) => {
                answer.opened += 1;
                stolen_from(&state, tag, case, entry.reported_at_ms).await?;
                (tag, case, "opened")
            }
            HotlistOutcome::Updated(tag, case) => {
                answer.updated += 1;
                (tag, case, "updated")
            }
            HotlistOutcome::AlreadyReported(tag, case) => {
                answer.already_reported += 1;
                (tag, case, "already_reported")
            }
            HotlistOutcome::Unknown => {
                answer.refused.push(RefusedLine {
                    line: *line,
                    field: Some(listed_field(entry)),
                    message: "no registered vehicle has it".into(),
                });
                continue;
            }
            HotlistOutcome::Ambiguous(n) => {
                answer.refused.push(RefusedLine {
                    line: *line,
                    field: Some("plate"),
                    message: format!("{n} registered vehicles have this plate: give the tag"),
                });
                continue;
            }
        };
        answer.applied.push(AppliedLine {
            line: *line,
            tag: tag.0,
            case_id: case.0,
            outcome: name,
        });
    }
    answer.refused.sort_by_key(|r| r.line);
    let target = format!(
        "hotlist lines:{} opened:{} updated:{} already_reported:{} refused:{}",
        answer.lines,
        answer.opened,
        answer.updated,
        answer.already_reported,
        answer.refused.len()
    );
    audit(
        &state,
        &caller,
        "hotlist.import",
        target,
        Some("hotlist import"),
    )
    .await?;
    tracing::info!(
        by = %caller.username,
        lines = answer.lines,
        opened = answer.opened,
        refused = answer.refused.len(),
        "hotlist imported"
    );
    Ok(Json(answer))
}

fn listed_field(entry: &HotlistEntry) -> &'static str {
    match entry.vehicle {
        Listed::Tag(_) => "tag",
        Listed::Plate(_) => "plate",
    }
}

/// A vehicle the list reports stolen joins the tracker's hotlist; its latest sighting since the
/// list's report is alerted at once (from the store when older than the tracker's memory).
async fn stolen_from(
    state: &ApiState,
    tag: TagId,
    case: tagwatch_model::CaseId,
    reported_at_ms: i64,
) -> Result<(), ApiError> {
    let stored = state
        .store
        .last_location(tag)
        .await?
        .filter(|l| l.seen_at_ms >= reported_at_ms)
        .map(|l| LastSeen {
            station: l.station,
            position: l.position,
            seen_at_ms: l.seen_at_ms,
        });
    tell_tracker(
        state,
        Command::Stolen {
            tag,
            case,
            since_ms: Some(reported_at_ms),
            stored,
        },
    )
    .await
}

/// Closes the cases whose list entry lapsed, every [`EXPIRY_SWEEP_EVERY`], and takes their
/// vehicles off the tracker's hotlist; until `shutdown`.
pub async fn sweep_expired(state: ApiState, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(EXPIRY_SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        match state.store.close_expired_cases(now_ms()).await {
            Ok(closed) => {
                for (tag, case) in closed {
                    tracing::info!(%tag, case = case.0, "hotlist entry expired; case closed");
                    let event = tagwatch_store::CaseEvent {
                        at_ms: now_ms(),
                        actor: "(hotlist)".into(),
                        kind: "closed".into(),
                        detail: "the list's entry expired".into(),
                    };
                    if let Err(error) = state.store.add_case_event(case, &event).await {
                        tracing::warn!(%error, case = case.0, "expiry not written to the case's history");
                    }
                    if tell_tracker(&state, Command::Recovered { tag })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "closing expired hotlist cases failed; retrying"),
        }
    }
}
