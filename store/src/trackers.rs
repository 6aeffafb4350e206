//! # GPS trackers: registration, their latest report, and the commands queued for them. Both
//! backends run the same SQL.
//!
//! A tracker is registered with a station row of its own (the next free id from
//! [`DEVICE_STATIONS_FROM`]) and a random key: the device listener signs the frames it makes
//! from the device's fixes with that key, and the gateway admits them as any station's.

use crate::{is_unique_violation, to_u32, Error, Result, Store};
use tagwatch_model::{
    GeoPoint, ReaderFix, StationId, StationKey, TagId, UserId, DEVICE_STATIONS_FROM,
};

/// A registered GPS tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerRow {
    /// 15 digits.
    pub imei: String,
    pub tag: TagId,
    pub station: StationId,
    pub key: StationKey,
    pub protocol: String,
    pub created_at_ms: i64,
    /// When its latest report was received, and the report as JSON.
    pub report_at_ms: Option<i64>,
    pub report: Option<String>,
}

/// An engine command for a tracker, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRow {
    pub id: i64,
    pub imei: String,
    pub tag: TagId,
    /// `stop` or `resume`.
    pub action: String,
    pub requested_by: String,
    pub purpose: String,
    pub requested_at_ms: i64,
    pub sent_at_ms: Option<i64>,
    pub answered_at_ms: Option<i64>,
    pub answer: Option<String>,
}

type TrackerTuple = (
    String,
    i64,
    i64,
    Vec<u8>,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
type CommandTuple = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

const TRACKER_COLUMNS: &str =
    "t.imei, t.tag, t.station, s.key, t.protocol, t.created_at, t.report_at, t.report";
const COMMAND_COLUMNS: &str =
    "id, imei, tag, action, requested_by, purpose, requested_at, sent_at, answered_at, answer";

fn tracker_from_row(row: TrackerTuple) -> Result<TrackerRow> {
    let (imei, tag, station, key, protocol, created_at_ms, report_at_ms, report) = row;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| Error::Corrupt(format!("tracker {imei}'s key is not 32 bytes")))?;
    Ok(TrackerRow {
        imei,
        tag: TagId(to_u32(tag)?),
        station: StationId(to_u32(station)?),
        key: StationKey(key),
        protocol,
        created_at_ms,
        report_at_ms,
        report,
    })
}

fn command_from_row(row: CommandTuple) -> Result<CommandRow> {
    let (
        id,
        imei,
        tag,
        action,
        requested_by,
        purpose,
        requested_at_ms,
        sent_at_ms,
        answered_at_ms,
        answer,
    ) = row;
    Ok(CommandRow {
        id,
        imei,
        tag: TagId(to_u32(tag)?),
        action,
        requested_by,
        purpose,
        requested_at_ms,
        sent_at_ms,
        answered_at_ms,
        answer,
    })
}

impl Store {
    /// Registers a tracker fitted to `tag`, with a new station of its own signed by `key`;
    /// returns that station. [`Error::NoSuchVehicle`] if the tag is not registered,
    /// [`Error::Conflict`] if the IMEI is.
    pub async fn insert_tracker(
        &self,
        imei: &str,
        tag: TagId,
        protocol: &str,
        key: &StationKey,
        now_ms: i64,
    ) -> Result<StationId> {
        if self.vehicle(tag).await?.is_none() {
            return Err(Error::NoSuchVehicle(tag));
        }
        let taken = || Error::Conflict(format!("tracker {imei} is already registered"));
        if self.tracker(imei).await?.is_some() {
            return Err(taken());
        }
        // Two registrations at once may pick the same id: the loser tries the next.
        for _ in 0..5 {
            let result = on_backend!(self, |pool, sql| {
                let mut tx = pool.begin().await?;
                let next: i64 = sqlx::query_scalar(&sql(
                    "SELECT COALESCE(MAX(id) + 1, $1) FROM stations WHERE id >= $1",
                ))
                .bind(i64::from(DEVICE_STATIONS_FROM))
                .fetch_one(&mut *tx)
                .await?;
                let station = StationId(to_u32(next)?);
                sqlx::query(&sql(
                    "INSERT INTO stations (id, name, lat, lon, key, created_at) \
                     VALUES ($1, $2, 0, 0, $3, $4)",
                ))
                .bind(next)
                .bind(format!("GPS tracker {imei}"))
                .bind(key.as_bytes().as_slice())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&sql(
                    "INSERT INTO trackers (imei, tag, station, protocol, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                ))
                .bind(imei)
                .bind(i64::from(tag.0))
                .bind(next)
                .bind(protocol)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(station)
            });
            match result {
                Ok(station) => return Ok(station),
                // A primary-key clash on the IMEI (SQLite does not report it as a unique
                // violation) or on the station id.
                Err(e) if is_unique_violation(&e) || matches!(e, sqlx::Error::Database(_)) => {
                    if self.tracker(imei).await?.is_some() {
                        return Err(taken());
                    }
                    if !is_unique_violation(&e) {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict(
            "could not assign a station to the tracker; try again".into(),
        ))
    }

    pub async fn tracker(&self, imei: &str) -> Result<Option<TrackerRow>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<TrackerTuple> = sqlx::query_as(&sql(&format!(
                "SELECT {TRACKER_COLUMNS} FROM trackers t JOIN stations s ON s.id = t.station \
                 WHERE t.imei = $1"
            )))
            .bind(imei)
            .fetch_optional(pool)
            .await?;
            row.map(tracker_from_row).transpose()
        })
    }

    /// Every tracker, by IMEI.
    pub async fn trackers(&self) -> Result<Vec<TrackerRow>> {
        self.trackers_matching("", None).await
    }

    /// The trackers fitted to `owner`'s vehicles.
    pub async fn trackers_of(&self, owner: UserId) -> Result<Vec<TrackerRow>> {
        let condition = "JOIN vehicles v ON v.tag = t.tag WHERE v.owner_id = $1";
        self.trackers_matching(condition, Some(owner.0)).await
    }

    /// The trackers fitted to `tag`.
    pub async fn trackers_on(&self, tag: TagId) -> Result<Vec<TrackerRow>> {
        self.trackers_matching("WHERE t.tag = $1", Some(i64::from(tag.0)))
            .await
    }

    /// Trackers with their station keys, narrowed by `condition` (joins and a `WHERE` with at
    /// most one parameter, `value`), by IMEI.
    async fn trackers_matching(
        &self,
        condition: &str,
        value: Option<i64>,
    ) -> Result<Vec<TrackerRow>> {
        on_backend!(self, reader, |pool, sql| {
            let text = sql(&format!(
                "SELECT {TRACKER_COLUMNS} FROM trackers t JOIN stations s ON s.id = t.station \
                 {condition} ORDER BY t.imei"
            ));
            let mut query = sqlx::query_as::<_, TrackerTuple>(&text);
            if let Some(value) = value {
                query = query.bind(value);
            }
            let rows = query.fetch_all(pool).await?;
            rows.into_iter().map(tracker_from_row).collect()
        })
    }

    /// Removes a tracker; false if there was none. Its station row stays (its visits and fixes
    /// are history), renamed so that the station list says what it was.
    pub async fn delete_tracker(&self, imei: &str) -> Result<bool> {
        on_backend!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            let station: Option<i64> = sqlx::query_scalar(&sql(
                "DELETE FROM trackers WHERE imei = $1 RETURNING station",
            ))
            .bind(imei)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(station) = station {
                sqlx::query(&sql("UPDATE stations SET name = $1 WHERE id = $2"))
                    .bind(format!("GPS tracker {imei} (removed)"))
                    .bind(station)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(station.is_some())
        })
    }

    /// A tracker's latest report (JSON), received at `at_ms`.
    pub async fn set_tracker_report(&self, imei: &str, at_ms: i64, report: &str) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE trackers SET report_at = $1, report = $2 WHERE imei = $3 \
                 AND (report_at IS NULL OR report_at <= $1)",
            ))
            .bind(at_ms)
            .bind(report)
            .bind(imei)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The fixes a mobile reader (a GPS tracker among them) kept in `[from_ms, to_ms]`, oldest
    /// first, at most `limit`.
    pub async fn reader_fixes_between(
        &self,
        station: StationId,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<ReaderFix>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, f64, f64)> = sqlx::query_as(&sql(
                "SELECT at_ms, lat, lon FROM reader_fixes WHERE station = $1 \
                 AND at_ms BETWEEN $2 AND $3 ORDER BY at_ms LIMIT $4",
            ))
            .bind(i64::from(station.0))
            .bind(from_ms)
            .bind(to_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(at_ms, lat, lon)| ReaderFix {
                    station,
                    at_ms,
                    position: GeoPoint { lat, lon },
                })
                .collect())
        })
    }

    /// Queues an engine command (`stop` or `resume`) for the tracker `imei` on `tag`.
    pub async fn queue_command(
        &self,
        imei: &str,
        tag: TagId,
        action: &str,
        requested_by: &str,
        purpose: &str,
        now_ms: i64,
    ) -> Result<CommandRow> {
        on_backend!(self, |pool, sql| {
            let row: CommandTuple = sqlx::query_as(&sql(&format!(
                "INSERT INTO tracker_commands (imei, tag, action, requested_by, purpose, requested_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COMMAND_COLUMNS}"
            )))
            .bind(imei)
            .bind(i64::from(tag.0))
            .bind(action)
            .bind(requested_by)
            .bind(purpose)
            .bind(now_ms)
            .fetch_one(pool)
            .await?;
            command_from_row(row)
        })
    }

    /// Commands for `imei` not yet answered, oldest first.
    pub async fn pending_commands(&self, imei: &str) -> Result<Vec<CommandRow>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<CommandTuple> = sqlx::query_as(&sql(&format!(
                "SELECT {COMMAND_COLUMNS} FROM tracker_commands \
                 WHERE imei = $1 AND answered_at IS NULL ORDER BY id"
            )))
            .bind(imei)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(command_from_row).collect()
        })
    }

    /// The latest commands for the trackers on `tag`, newest first, at most `limit`.
    pub async fn commands_on(&self, tag: TagId, limit: u32) -> Result<Vec<CommandRow>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<CommandTuple> = sqlx::query_as(&sql(&format!(
                "SELECT {COMMAND_COLUMNS} FROM tracker_commands WHERE tag = $1 \
                 ORDER BY id DESC LIMIT $2"
            )))
            .bind(i64::from(tag.0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(command_from_row).collect()
        })
    }

    /// The command went out to the device at `at_ms`.
    pub async fn command_sent(&self, id: i64, at_ms: i64) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE tracker_commands SET sent_at = $1 WHERE id = $2",
            ))
            .bind(at_ms)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The device answered the command with `answer` at `at_ms`.
    pub async fn command_answered(&self, id: i64, at_ms: i64, answer: &str) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE tracker_commands SET answered_at = $1, answer = $2 WHERE id = $3",
            ))
            .bind(at_ms)
            .bind(answer)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
