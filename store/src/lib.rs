//! # TagWatch store
//!
//! The last stage of the pipeline: where visits, alerts and the exactly-once watermarks become
//! durable, and where the API reads history from.
//!
//! ## Layout
//! - [`Store`]: opens the database named by a URL — `sqlite://PATH` (the embedded default),
//!   `sqlite::memory:` (tests) or `postgres://...` (production) — runs its migrations, and offers
//!   one function per question the system asks. Each backend lives in its own module
//!   ([`sqlite`], [`postgres`]) and both pass the same test suite.
//! - [`Batch`]: everything one flush writes. [`Store::commit`] writes a batch in one transaction,
//!   so the watermarks of the frames it covers become durable together with their effects; the
//!   caller ACKs those frames only after it returns.
//!
//! One writer: all batches go through one connection, so they commit in order and never contend;
//! readers use their own connections.

/// Runs `$body` on whichever backend is open, with `$pool` its writer and `$sql` turning
/// Postgres-style `$1` placeholders into SQLite's `?1`.
/// (For the rarely-called functions whose SQL is the same on both backends.)
macro_rules! on_backend {
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        on_backend!($store, writer, |$pool, $sql| $body)
    };
    // `reader`: questions that must not queue behind a flush on SQLite's one writer.
    ($store:expr, $which:ident, |$pool:ident, $sql:ident| $body:expr) => {
        match $store {
            Store::Sqlite(s) => {
                let $pool = &s.$which;
                let $sql = |q: &str| q.replace('$', "?");
                $body
            }
            Store::Postgres(s) => {
                let $pool = &s.$which;
                let $sql = |q: &str| q.to_owned();
                $body
            }
        }
    };
}

mod accounts;
mod admin;
mod alerts;
mod cases;
mod history;
mod hotlist;
mod partitions;
pub mod postgres;
mod readers;
mod response;
mod restart;
pub mod sqlite;
mod stations;
mod trackers;
mod vehicles;
mod watch;
mod webhooks;

pub use accounts::AuditFilter;
pub use admin::{Account, VehicleRow};
pub use cases::{CaseEvent, CaseRow};
pub use hotlist::{HotlistEntry, HotlistOutcome, Listed};
pub use partitions::{PartitionState, PartitionStep, SeenRuns};
pub use trackers::{CommandRow, TrackerRow};
pub use watch::Precinct;
pub use webhooks::{Delivery, Webhook};

use tagwatch_model::{
    Alert, AlertId, AlertKind, AuditEntry, GeoPoint, ReaderFix, Role, Station, StationId,
    StationStatus, TagId, User, UserId, Vehicle, Visit, VisitId, Watermark,
};

/// What can go wrong in the store, with domain errors kept apart from database failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("station {0} is already registered")]
    StationExists(StationId),
    #[error("tag {0} is already registered")]
    TagExists(TagId),
    #[error("plate {0:?} is already registered")]
    PlateExists(String),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no vehicle with tag {0}")]
    NoSuchVehicle(TagId),
    #[error("tag {0} has no open theft case")]
    NoOpenCase(TagId),
    #[error("tag {0} already has an open theft case")]
    CaseAlreadyOpen(TagId),
    #[error("database URL {0:?} is not supported (use sqlite://PATH, sqlite::memory: or postgres://...)")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "partition {partition} has moved on from sequence {expected}: another shard applies it now"
    )]
    Fenced { partition: u16, expected: u64 },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Everything one flush makes durable, atomically.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// New visits and visits whose start moved: every column is written.
    pub visits: Vec<Visit>,
    /// Visits that only grew at the end: their start (and the indexes on it) is left alone.
    pub extended_visits: Vec<Visit>,
    pub deleted_visits: Vec<VisitId>,
    pub alerts: Vec<Alert>,
    pub watermarks: Vec<Watermark>,
    pub statuses: Vec<StationStatus>,
    /// Mobile readers' GPS fixes (a fix already stored is kept as it is: a replayed frame
    /// brings the same one again).
    pub reader_fixes: Vec<ReaderFix>,
    /// Frames applied since the last checkpoint whose visits this batch does not write.
    pub journal: Vec<JournalEntry>,
    /// A checkpoint: the batch's visits cover every frame journaled up to this seq, so those
    /// journal rows are deleted.
    pub journal_done_through: Option<i64>,
    /// A cluster shard's batch: its partition's advance, conditioned on where it stood (see
    /// [`PartitionStep`]).
    pub partition: Option<PartitionStep>,
}

/// One applied frame, kept until a checkpoint writes the visits it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Order of application.
    pub seq: i64,
    pub applied_at_ms: i64,
    /// The tracker's next visit id when the frame was applied.
    pub first_visit_id: i64,
    /// The frame as its station sent it (MAC checked when it arrived).
    pub frame: Vec<u8>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.visits.is_empty()
            && self.extended_visits.is_empty()
            && self.deleted_visits.is_empty()
            && self.alerts.is_empty()
            && self.watermarks.is_empty()
            && self.statuses.is_empty()
            && self.reader_fixes.is_empty()
            && self.journal.is_empty()
            && self.journal_done_through.is_none()
            && self.partition.is_none()
    }

    /// Rows the batch writes (for the flush-size metric).
    pub fn rows(&self) -> usize {
        self.visits.len()
            + self.extended_visits.len()
            + self.deleted_visits.len()
            + self.alerts.len()
            + self.watermarks.len()
            + self.statuses.len()
            + self.reader_fixes.len()
            + self.journal.len()
    }
}

/// A tag's latest visit, placed at its station.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub tag: TagId,
    pub station: StationId,
    pub position: GeoPoint,
    pub seen_at_ms: i64,
}

/// A visit with its station's position, for tracks.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedVisit {
    pub visit: Visit,
    pub position: GeoPoint,
}

/// Rows per multi-row statement: 9 columns at most, well under SQLite's 32,766 parameters.
pub const ROWS_PER_STATEMENT: usize = 1_000;

pub(crate) type VisitRow = (i64, i64, i64, i64, i64, i64, i64);
pub(crate) type PlacedVisitRow = (i64, i64, i64, i64, i64, i64, i64, f64, f64);
pub(crate) type UserRow = (i64, String, String, String);
pub(crate) type AuditRow = (i64, i64, String, String, String, String, String, String);
pub(crate) type AlertRow = (i64, String, String, i64, i64, f64, f64, i64, i64, String);

/// The database, whichever backend the URL names.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::PgStore::open(url).await?))
        } else {
            Err(Error::UnsupportedUrl(url.to_owned()))
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }

    /// Housekeeping that must run ahead of time (Postgres: the coming days' visit partitions).
    pub async fn prepare(&self, now_ms: i64) -> Result<()> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(s) => s.prepare_partitions(now_ms, 7).await.map(|_| ()),
        }
    }

    /// Drops visits that ended before `cutoff_ms`, except those of tags with an open theft case
    /// (Postgres: whole daily partitions), and the mobile readers' fixes no kept visit needs.
    /// Returns the visit rows dropped.
    pub async fn retain(&self, cutoff_ms: i64) -> Result<u64> {
        let dropped = match self {
            Store::Sqlite(s) => s.retain(cutoff_ms).await?,
            Store::Postgres(s) => s.retain(cutoff_ms).await?,
        };
        self.retain_reader_fixes(cutoff_ms).await?;
        Ok(dropped)
    }

    /// `sqlite` or `postgres`, for logs and health.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    // What truly differs between the backends (transactions, COPY, partitions): each has its
    // own; every other query is written once, in the modules by topic.

    /// Runs the migrations only (they are idempotent: `tagwatch migrate`).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(s) => s.migrate().await,
        }
    }

    pub async fn insert_vehicle(&self, vehicle: &Vehicle, now_ms: i64) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.insert_vehicle(vehicle, now_ms).await,
            Store::Postgres(s) => s.insert_vehicle(vehicle, now_ms).await,
        }
    }

    /// Registers many vehicles in one transaction (bulk provisioning); all or none.
    pub async fn insert_vehicles(&self, vehicles: &[Vehicle], now_ms: i64) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.insert_vehicles(vehicles, now_ms).await,
            Store::Postgres(s) => s.insert_vehicles(vehicles, now_ms).await,
        }
    }

    /// Writes one batch in a single transaction, with multi-row statements (one statement per
    /// [`ROWS_PER_STATEMENT`] rows rather than one per row: the per-statement cost dominates).
    pub async fn commit(&self, batch: &Batch) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.commit(batch).await,
            Store::Postgres(s) => s.commit(batch).await,
        }
    }

    /// Commits a checkpoint (visits and the journal they cover). On Postgres it has its own
    /// connection, so the flushes go on while it commits; checkpoints must commit in order, and
    /// each only after the flushes journaling the frames it covers.
    pub async fn commit_checkpoint(&self, batch: &Batch) -> Result<()> {
        match self {
            Store::Sqlite(s) => s.commit_checkpoint(batch).await,
            Store::Postgres(s) => s.commit_checkpoint(batch).await,
        }
    }

    /// Visits that may still grow: those whose last detection is within `window_ms` of the
    /// latest stored detection.
    pub async fn open_visits(&self, window_ms: i64) -> Result<Vec<Visit>> {
        match self {
            Store::Sqlite(s) => s.open_visits(window_ms).await,
            Store::Postgres(s) => s.open_visits(window_ms).await,
        }
    }

    /// The tag heard most recently, if any.
    pub async fn most_recent_tag(&self) -> Result<Option<TagId>> {
        match self {
            Store::Sqlite(s) => s.most_recent_tag().await,
            Store::Postgres(s) => s.most_recent_tag().await,
        }
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn to_u32(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("{value} is not a u32 id")))
}

pub(crate) fn journal_entry(
    (seq, applied_at_ms, first_visit_id, frame): (i64, i64, i64, Vec<u8>),
) -> JournalEntry {
    JournalEntry {
        seq,
        applied_at_ms,
        first_visit_id,
        frame,
    }
}

pub(crate) fn visit_from_row(row: VisitRow) -> Result<Visit> {
    let (id, tag, station, first_seen_ms, last_seen_ms, rssi, reads) = row;
    Ok(Visit {
        id: VisitId(id),
        tag: TagId(to_u32(tag)?),
        station: StationId(to_u32(station)?),
        first_seen_ms,
        last_seen_ms,
        best_rssi: i8::try_from(rssi).map_err(|_| Error::Corrupt(format!("rssi {rssi}")))?,
        reads: to_u32(reads)?,
    })
}

/// The same on both backends (no parameters to spell differently).
pub(crate) const STATIONS_HEALTH_SQL: &str =
    "SELECT s.id, s.name, s.lat, s.lon, h.received_at, h.station_time, h.uptime_s, \
     h.backlog, h.fw_version, h.temp_c, h.power, h.tags_in_range \
     FROM stations s LEFT JOIN station_status h ON h.station = s.id ORDER BY s.id";

pub(crate) type StationHealthRow = (
    i64,
    String,
    f64,
    f64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

pub(crate) fn station_health_from_row(
    row: StationHealthRow,
) -> Result<(Station, Option<StationStatus>)> {
    let (id, name, lat, lon, received, time, uptime, backlog, fw, temp, power, tags) = row;
    let id = StationId(to_u32(id)?);
    let station = Station {
        id,
        name,
        position: GeoPoint { lat, lon },
    };
    let status = match (received, time, uptime, backlog, fw, temp, power, tags) {
        (Some(r), Some(t), Some(u), Some(b), Some(f), Some(c), Some(p), Some(g)) => {
            Some(status_from_row(id, (r, t, u, b, f, c, p, g))?)
        }
        _ => None,
    };
    Ok((station, status))
}

pub(crate) fn placed_visit_from_row(row: PlacedVisitRow) -> Result<PlacedVisit> {
    let (id, tag, station, first, last, rssi, reads, lat, lon) = row;
    Ok(PlacedVisit {
        visit: visit_from_row((id, tag, station, first, last, rssi, reads))?,
        position: GeoPoint { lat, lon },
    })
}

/// The `tag` column of an alert: 0 for alerts about a station.
pub(crate) fn alert_tag_column(alert: &Alert) -> i64 {
    alert.tag.map_or(0, |t| i64::from(t.0))
}

/// The `detail` column of an alert, as JSON text.
pub(crate) fn alert_detail_column(alert: &Alert) -> String {
    // A struct of plain fields always serializes.
    serde_json::to_string(&alert.detail).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn alert_from_row(row: AlertRow) -> Result<Alert> {
    let (seq, id, kind, tag, station, lat, lon, seen_at_ms, raised_at_ms, detail) = row;
    Ok(Alert {
        seq,
        detail: serde_json::from_str(&detail)
            .map_err(|e| Error::Corrupt(format!("alert {id} detail: {e}")))?,
        id: AlertId(id),
        kind: AlertKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("alert kind {kind}")))?,
        // Alerts about a station store tag 0, which no tag can have on the wire.
        tag: (tag != 0).then(|| to_u32(tag).map(TagId)).transpose()?,
        station: StationId(to_u32(station)?),
        position: GeoPoint { lat, lon },
        seen_at_ms,
        raised_at_ms,
    })
}

pub(crate) type StatusRow = (i64, i64, i64, i64, i64, i64, i64, i64);

pub(crate) fn status_from_row(station: StationId, row: StatusRow) -> Result<StationStatus> {
    let (received, station_time, uptime, backlog, fw, temp, power, tags) = row;
    let corrupt = |what: &str| Error::Corrupt(format!("station_status.{what}"));
    Ok(StationStatus {
        station,
        received_at_ms: received,
        station_time_ms: station_time,
        uptime_s: to_u32(uptime)?,
        backlog: to_u32(backlog)?,
        fw_version: u16::try_from(fw).map_err(|_| corrupt("fw_version"))?,
        temp_c: i8::try_from(temp).map_err(|_| corrupt("temp_c"))?,
        power: u8::try_from(power).map_err(|_| corrupt("power"))?,
        tags_in_range: u16::try_from(tags).map_err(|_| corrupt("tags_in_range"))?,
    })
}

/// Writes a watermark's `above` column: comma-separated sequence numbers, a run of three or more
/// written as `first-last`. A station that sends its live frames ahead of an hour's backlog (see
/// `PROTOCOL.md`) has thousands of seqs above its watermark, nearly all in one run: this keeps its
/// row a few bytes instead of kilobytes rewritten with every flush.
pub(crate) fn join_seqs(seqs: &[u32]) -> String {
    let mut text = String::new();
    let mut rest = seqs;
    while let Some(&first) = rest.first() {
        let run = rest
            .windows(2)
            .take_while(|w| w[1] == w[0].wrapping_add(1))
            .count()
            + 1;
        if !text.is_empty() {
            text.push(',');
        }
        match run {
            1 => text.push_str(&first.to_string()),
            2 => text.push_str(&format!("{first},{}", rest[1])),
            _ => text.push_str(&format!("{first}-{}", rest[run - 1])),
        }
        rest = &rest[run..];
    }
    text
}

/// Parses a watermark's `above` column (see [`join_seqs`]; plain lists written before runs were
/// read the same). A run longer than [`MAX_ABOVE_RUN`] is corrupt: no session's window is that
/// wide, and expanding it must not exhaust memory.
pub(crate) fn split_seqs(text: &str) -> Result<Vec<u32>> {
    let corrupt = |s: &str| Error::Corrupt(format!("watermark seq {s:?}"));
    let mut seqs = Vec::new();
    for part in text.split(',').filter(|s| !s.is_empty()) {
        let parse = |s: &str| s.parse::<u32>().map_err(|_| corrupt(part));
        match part.split_once('-') {
            None => seqs.push(parse(part)?),
            Some((first, last)) => {
                let (first, last) = (parse(first)?, parse(last)?);
                if last < first || last - first > MAX_ABOVE_RUN {
                    return Err(corrupt(part));
                }
                seqs.extend(first..=last);
            }
        }
    }
    Ok(seqs)
}

/// The longest run of seqs a stored watermark may hold above its contiguous part.
const MAX_ABOVE_RUN: u32 = 1 << 20;

/// Helpers for test suites that need a real database.
pub mod testing {
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The environment variable naming a Postgres server tests may create databases on, e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`.
    pub const POSTGRES_URL_VAR: &str = "TAGWATCH_TEST_POSTGRES_URL";

    /// Creates a fresh, empty database on the test Postgres server and returns its URL; `None`
    /// (with a note on stderr) when no server is configured.
    pub async fn fresh_postgres() -> Option<String> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!(
                "{POSTGRES_URL_VAR} is not set: the Postgres variant of this test is skipped"
            );
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "tagwatch_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={admin_url}: cannot connect: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        Some(format!("{base}/{name}"))
    }
}

pub(crate) fn user_from_row(row: UserRow) -> Result<User> {
    let (id, username, password_hash, role) = row;
    Ok(User {
        id: UserId(id),
        username,
        password_hash,
        role: Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
    })
}

pub(crate) fn audit_from_row(row: AuditRow) -> Result<AuditEntry> {
    let (id, at_ms, actor, role, action, target, purpose, outcome) = row;
    Ok(AuditEntry {
        id,
        at_ms,
        actor,
        role: Role::parse(&role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
        action,
        target,
        purpose,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn runs_are_written_as_ranges_and_lists_written_before_still_read() {
        assert_eq!(join_seqs(&[]), "");
        assert_eq!(join_seqs(&[7]), "7");
        assert_eq!(join_seqs(&[7, 8]), "7,8");
        assert_eq!(join_seqs(&[3, 5, 6, 7, 8, 20]), "3,5-8,20");
        assert_eq!(split_seqs("3,5-8,20").expect("parses"), [3, 5, 6, 7, 8, 20]);
        assert_eq!(split_seqs("1,2,3").expect("the old form"), [1, 2, 3]);
    }

    #[test]
    fn a_corrupt_run_is_an_error_not_an_allocation() {
        for text in ["8-5", "1-4294967295", "5-", "-5", "a-b", "1-2-3"] {
            assert!(
                matches!(split_seqs(text), Err(Error::Corrupt(_))),
                "{text:?} must be refused"
            );
        }
    }

    proptest! {
        /// Any set of seqs above a watermark reads back exactly as written.
        #[test]
        fn seqs_read_back_as_written(mut seqs in proptest::collection::vec(any::<u32>(), 0..64),
                                     runs in proptest::collection::vec((0u32..u32::MAX - 100, 1u32..50), 0..4)) {
            for (start, len) in runs {
                seqs.extend(start..start + len);
            }
            seqs.sort_unstable();
            seqs.dedup();
            prop_assert_eq!(split_seqs(&join_seqs(&seqs)).expect("parses"), seqs);
        }
    }
}
