//! # The Postgres backend, for production.
//!
//! Visits live in a table range-partitioned by visit id, and a visit id is its creation time
//! shifted left ([`tagwatch_model::visit::VISIT_ID_TIME_SHIFT`]): one partition per day, created ahead of time, dropped
//! whole by retention. A DEFAULT partition catches anything outside the prepared days (data from a
//! station with a wild clock, simulations in virtual time). Flushes stream visit rows with `COPY`
//! into a per-connection staging table and upsert them in two set-based statements; the small
//! tables go in with `UNNEST` arrays. Everything of a flush commits in one transaction.

use crate::{
    alert_detail_column, alert_tag_column, to_u32, visit_from_row, Batch, Error, Result, VisitRow,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgConnection, Postgres, Transaction};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;
use tagwatch_model::{TagId, Vehicle, Visit, VisitId};

const DAY_MS: i64 = 86_400_000;

/// How far back (by creation) restoring open visits looks.
pub const OPEN_VISIT_SCAN_DAYS: i64 = 7;

/// A Postgres database.
#[derive(Debug, Clone)]
pub struct PgStore {
    /// One connection: flushes commit in order, and its staging table lives with it.
    pub(crate) writer: PgPool,
    /// One more for checkpoints, so that writing a checkpoint's visits does not hold up the
    /// flushes (and ACKs) behind it: the two touch different rows.
    checkpointer: PgPool,
    pub(crate) reader: PgPool,
}

impl PgStore {
    /// Connects to `url`, migrates, and prepares the visit partitions around today.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .application_name("tagwatch");
        let writer = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&writer).await?;
        let checkpointer = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        let reader = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = Self {
            writer,
            checkpointer,
            reader,
        };
        store
            .prepare_partitions(tagwatch_model::time::now_ms(), 7)
            .await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.checkpointer.close().await;
        self.reader.close().await;
    }

    /// Creates the daily visit partitions from yesterday to `days_ahead` days after `now_ms`.
    /// A day whose rows already sit in the DEFAULT partition is left there (Postgres refuses a
    /// partition that would take rows away from DEFAULT).
    pub async fn prepare_partitions(&self, now_ms: i64, days_ahead: i64) -> Result<u32> {
        let today = now_ms.div_euclid(DAY_MS);
        let mut created = 0;
        for day in today - 1..=today + days_ahead {
            let name = partition_name(day);
            let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(&name)
                .fetch_one(&self.writer)
                .await?;
            if exists.is_some() {
                continue;
            }
            let (from, to) = (
                VisitId::floor_at(day * DAY_MS),
                VisitId::floor_at((day + 1) * DAY_MS),
            );
            let in_default: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM visits_default WHERE id >= $1 AND id < $2)",
            )
            .bind(from)
            .bind(to)
            .fetch_one(&self.writer)
            .await?;
            if in_default {
                tracing::warn!(partition = %name, "rows for this day are in visits_default; not partitioning it");
                continue;
            }
            // Identifiers and bounds are ours (digits only), not user input.
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF visits FOR VALUES FROM ({from}) TO ({to}) \
                 WITH (fillfactor = 70)"
            ))
            .execute(&self.writer)
            .await?;
            created += 1;
        }
        Ok(created)
    }

    /// Drops visits that ended before `cutoff_ms`, whole partitions at a time, keeping the
    /// visits of tags with an open theft case. Returns the visit rows dropped.
    pub async fn retain(&self, cutoff_ms: i64) -> Result<u64> {
        let partitions: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'visits'::regclass AND c.relname ~ '^visits_p[0-9]{8}$' \
             ORDER BY 1",
        )
        .fetch_all(&self.writer)
        .await?;
        let mut dropped = 0u64;
        for name in partitions {
            let Some(day) = partition_day(&name) else {
                continue;
            };
            // A partition holds visits created that day; they ended at most a hot window later,
            // so it may go once its last creation time is a day older than the cutoff.
            if (day + 2) * DAY_MS > cutoff_ms {
                continue;
            }
            let mut tx = self.writer.begin().await?;
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
                .fetch_one(&mut *tx)
                .await?;
            tx.execute(format!("ALTER TABLE visits DETACH PARTITION {name}").as_str())
                .await?;
            // The kept visits go back into the table; with their day detached, they land in
            // the DEFAULT partition.
            let kept = sqlx::query(&format!(
                "INSERT INTO visits SELECT * FROM {name} \
                 WHERE tag IN (SELECT tag FROM cases WHERE closed_at IS NULL)"
            ))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.execute(format!("DROP TABLE {name}").as_str()).await?;
            tx.commit().await?;
            dropped += u64::try_from(rows).unwrap_or(0).saturating_sub(kept);
            tracing::info!(partition = %name, rows, kept, "dropped a visit partition");
        }
        dropped += sqlx::query(
            "DELETE FROM visits_default WHERE last_seen < $1 \
             AND tag NOT IN (SELECT tag FROM cases WHERE closed_at IS NULL)",
        )
        .bind(cutoff_ms)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(dropped)
    }

    // ---- stations ----

    // ---- vehicles and cases ----

    pub async fn insert_vehicle(&self, vehicle: &Vehicle, now_ms: i64) -> Result<()> {
        self.insert_vehicles(std::slice::from_ref(vehicle), now_ms)
            .await
    }

    pub async fn insert_vehicles(&self, vehicles: &[Vehicle], now_ms: i64) -> Result<()> {
        let column = |f: fn(&Vehicle) -> String| vehicles.iter().map(f).collect::<Vec<_>>();
        let result = sqlx::query(
            "INSERT INTO vehicles \
             (tag, plate, owner_name, owner_phone, created_at, make, model, colour, plate_key) \
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], \
             $6::text[], $7::text[], $8::text[], $9::text[])",
        )
        .bind(
            vehicles
                .iter()
                .map(|v| i64::from(v.tag.0))
                .collect::<Vec<_>>(),
        )
        .bind(column(|v| v.plate.clone()))
        .bind(column(|v| v.owner_name.clone()))
        .bind(column(|v| v.owner_phone.clone()))
        .bind(vec![now_ms; vehicles.len()])
        .bind(column(|v| v.make.clone()))
        .bind(column(|v| v.model.clone()))
        .bind(column(|v| v.colour.clone()))
        .bind(column(|v| tagwatch_model::plate_key(&v.plate)))
        .execute(&self.writer)
        .await;
        match result {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                let on_plate = db.constraint().is_some_and(|c| c.contains("plate"));
                match vehicles {
                    [one] if on_plate => Err(Error::PlateExists(one.plate.clone())),
                    [one] => Err(Error::TagExists(one.tag)),
                    many => Err(Error::Conflict(format!(
                        "one of {} vehicles is already registered: {}",
                        many.len(),
                        db.message()
                    ))),
                }
            }
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    // ---- the flush ----

    /// Writes one batch in a single transaction: visit rows by `COPY`, the rest by `UNNEST`.
    pub async fn commit(&self, batch: &Batch) -> Result<()> {
        commit_on(&self.writer, batch).await
    }

    /// Writes a checkpoint's batch on its own connection, alongside the flushes.
    pub async fn commit_checkpoint(&self, batch: &Batch) -> Result<()> {
        commit_on(&self.checkpointer, batch).await
    }
}

async fn commit_on(pool: &PgPool, batch: &Batch) -> Result<()> {
    let mut tx = pool.begin().await?;
    if !batch.visits.is_empty() || !batch.extended_visits.is_empty() {
        copy_visits(&mut tx, batch).await?;
    }
    if !batch.journal.is_empty() {
        let j = &batch.journal;
        sqlx::query(
            "INSERT INTO frame_journal (seq, applied_at, first_visit_id, frame) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[])",
        )
        .bind(j.iter().map(|j| j.seq).collect::<Vec<_>>())
        .bind(j.iter().map(|j| j.applied_at_ms).collect::<Vec<_>>())
        .bind(j.iter().map(|j| j.first_visit_id).collect::<Vec<_>>())
        .bind(j.iter().map(|j| j.frame.as_slice()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if let Some(done) = batch.journal_done_through {
        sqlx::query("DELETE FROM frame_journal WHERE seq <= $1")
            .bind(done)
            .execute(&mut *tx)
            .await?;
    }
    if !batch.deleted_visits.is_empty() {
        sqlx::query("DELETE FROM visits WHERE id = ANY($1)")
            .bind(batch.deleted_visits.iter().map(|v| v.0).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    if !batch.alerts.is_empty() {
        let a = &batch.alerts;
        // The id is deterministic: a frame applied again after a crash finds its alert here.
        sqlx::query(
                "INSERT INTO alerts (seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail) \
                 SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], \
                 $5::bigint[], $6::float8[], $7::float8[], $8::bigint[], $9::bigint[], $10::text[]) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(a.iter().map(|a| a.seq).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.id.0.clone()).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(alert_tag_column).collect::<Vec<_>>())
            .bind(a.iter().map(|a| i64::from(a.station.0)).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.position.lat).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.position.lon).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.seen_at_ms).collect::<Vec<_>>())
            .bind(a.iter().map(|a| a.raised_at_ms).collect::<Vec<_>>())
            .bind(a.iter().map(alert_detail_column).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
    }
    if !batch.watermarks.is_empty() {
        let w = &batch.watermarks;
        let now = tagwatch_model::time::now_ms();
        sqlx::query(
            "INSERT INTO watermarks (station, session, contiguous, above, updated_at) \
                 SELECT s, n, c, a, $5 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], \
                 $4::text[]) AS u(s, n, c, a) \
                 ON CONFLICT (station, session) DO UPDATE SET contiguous = excluded.contiguous, \
                 above = excluded.above, updated_at = excluded.updated_at",
        )
        .bind(w.iter().map(|w| i64::from(w.station.0)).collect::<Vec<_>>())
        .bind(w.iter().map(|w| i64::from(w.session.0)).collect::<Vec<_>>())
        .bind(
            w.iter()
                .map(|w| i64::from(w.contiguous))
                .collect::<Vec<_>>(),
        )
        .bind(
            w.iter()
                .map(|w| crate::join_seqs(&w.above))
                .collect::<Vec<_>>(),
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if !batch.statuses.is_empty() {
        let s = &batch.statuses;
        sqlx::query(
            "INSERT INTO station_status (station, received_at, station_time, uptime_s, \
                 backlog, fw_version, temp_c, power, tags_in_range) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
                 $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) \
                 ON CONFLICT (station) DO UPDATE SET received_at = excluded.received_at, \
                 station_time = excluded.station_time, uptime_s = excluded.uptime_s, \
                 backlog = excluded.backlog, fw_version = excluded.fw_version, \
                 temp_c = excluded.temp_c, power = excluded.power, \
                 tags_in_range = excluded.tags_in_range",
        )
        .bind(s.iter().map(|s| i64::from(s.station.0)).collect::<Vec<_>>())
        .bind(s.iter().map(|s| s.received_at_ms).collect::<Vec<_>>())
        .bind(s.iter().map(|s| s.station_time_ms).collect::<Vec<_>>())
        .bind(s.iter().map(|s| i64::from(s.uptime_s)).collect::<Vec<_>>())
        .bind(s.iter().map(|s| i64::from(s.backlog)).collect::<Vec<_>>())
        .bind(
            s.iter()
                .map(|s| i64::from(s.fw_version))
                .collect::<Vec<_>>(),
        )
        .bind(s.iter().map(|s| i64::from(s.temp_c)).collect::<Vec<_>>())
        .bind(s.iter().map(|s| i64::from(s.power)).collect::<Vec<_>>())
        .bind(
            s.iter()
                .map(|s| i64::from(s.tags_in_range))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    if !batch.reader_fixes.is_empty() {
        let f = &batch.reader_fixes;
        let stations: Vec<i64> = f.iter().map(|f| i64::from(f.station.0)).collect();
        let times: Vec<i64> = f.iter().map(|f| f.at_ms).collect();
        let lats: Vec<f64> = f.iter().map(|f| f.position.lat).collect();
        let lons: Vec<f64> = f.iter().map(|f| f.position.lon).collect();
        sqlx::query(
            "INSERT INTO reader_fixes (station, at_ms, lat, lon) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::float8[]) \
             ON CONFLICT (station, at_ms) DO NOTHING",
        )
        .bind(&stations)
        .bind(&times)
        .bind(&lats)
        .bind(&lons)
        .execute(&mut *tx)
        .await?;
        // One row per reader: its latest fix in the batch, if later than the one stored.
        sqlx::query(
            "INSERT INTO readers (station, at_ms, lat, lon) \
             SELECT DISTINCT ON (station) * \
             FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::float8[]) \
               AS f (station, at_ms, lat, lon) \
             ORDER BY station, at_ms DESC \
             ON CONFLICT (station) DO UPDATE SET at_ms = excluded.at_ms, lat = excluded.lat, \
               lon = excluded.lon WHERE excluded.at_ms > readers.at_ms",
        )
        .bind(&stations)
        .bind(&times)
        .bind(&lats)
        .bind(&lons)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(step) = &batch.partition {
        crate::partitions::advance_partition!(&mut tx, step, |q: &str| q.to_owned());
    }
    tx.commit().await?;
    Ok(())
}

impl PgStore {
    // ---- accounts, tokens, owners, audit ----

    // ---- restart ----

    /// Visits that may still grow. Without an index on `last_seen` (see the migration), the scan
    /// is bounded by id: visits created in the last [`OPEN_VISIT_SCAN_DAYS`] days, plus the DEFAULT
    /// partition (data outside the prepared days). A visit open for longer than that (a vehicle
    /// parked in range for a week) restarts as a new visit after a server restart.
    pub async fn open_visits(&self, window_ms: i64) -> Result<Vec<Visit>> {
        let floor =
            VisitId::floor_at(tagwatch_model::time::now_ms() - OPEN_VISIT_SCAN_DAYS * DAY_MS);
        let rows: Vec<VisitRow> = sqlx::query_as(
            "WITH recent AS ( \
                 SELECT * FROM visits WHERE id >= $2 \
                 UNION ALL SELECT * FROM visits_default WHERE id < $2) \
             SELECT id, tag, station, first_seen, last_seen, best_rssi, reads FROM recent \
             WHERE last_seen >= (SELECT MAX(last_seen) FROM recent) - $1 ORDER BY id",
        )
        .bind(window_ms)
        .bind(floor)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(visit_from_row).collect()
    }

    // ---- queries ----

    pub async fn most_recent_tag(&self) -> Result<Option<TagId>> {
        // The newest visits by id are the newest created; the latest heard is among them.
        let tag: Option<i64> = sqlx::query_scalar(
            "SELECT tag FROM (SELECT tag, last_seen FROM visits ORDER BY id DESC LIMIT 1000) v \
             ORDER BY last_seen DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        tag.map(|t| Ok(TagId(to_u32(t)?))).transpose()
    }
}

/// Visit rows formatted and sent to `COPY` at a time (a few milliseconds of work).
const COPY_CHUNK_ROWS: usize = 20_000;

/// Streams the batch's visit rows into the staging table and upserts them: whole rows for new
/// or moved visits, only the growing columns for extensions.
async fn copy_visits(tx: &mut Transaction<'_, Postgres>, batch: &Batch) -> Result<()> {
    let conn: &mut PgConnection = tx;
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS visit_stage (id bigint, tag bigint, station bigint, \
         first_seen bigint, last_seen bigint, best_rssi bigint, reads bigint, whole boolean) \
         ON COMMIT DELETE ROWS",
    )
    .await?;
    let mut copy = conn.copy_in_raw("COPY visit_stage FROM STDIN").await?;
    for (visits, whole) in [(&batch.visits, 't'), (&batch.extended_visits, 'f')] {
        for chunk in visits.chunks(COPY_CHUNK_ROWS) {
            let mut text = String::with_capacity(64 * chunk.len());
            for v in chunk {
                // Integers only: nothing to escape in COPY's text format.
                let _ = writeln!(
                    text,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{whole}",
                    v.id.0,
                    v.tag.0,
                    v.station.0,
                    v.first_seen_ms,
                    v.last_seen_ms,
                    v.best_rssi,
                    v.reads
                );
            }
            copy.send(text.into_bytes()).await?;
            // A checkpoint formats millions of rows: between chunks, the other tasks of this
            // runtime worker (flushes, ACKs, alerts) run.
            tokio::task::yield_now().await;
        }
    }
    copy.finish().await?;
    conn.execute(
        "INSERT INTO visits (id, tag, station, first_seen, last_seen, best_rssi, reads) \
         SELECT id, tag, station, first_seen, last_seen, best_rssi, reads FROM visit_stage \
         WHERE whole ON CONFLICT (id) DO UPDATE SET first_seen = excluded.first_seen, \
         last_seen = excluded.last_seen, best_rssi = excluded.best_rssi, reads = excluded.reads",
    )
    .await?;
    conn.execute(
        "INSERT INTO visits (id, tag, station, first_seen, last_seen, best_rssi, reads) \
         SELECT id, tag, station, first_seen, last_seen, best_rssi, reads FROM visit_stage \
         WHERE NOT whole ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
         best_rssi = excluded.best_rssi, reads = excluded.reads",
    )
    .await?;
    Ok(())
}

fn partition_name(day: i64) -> String {
    let date = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(day);
    format!(
        "visits_p{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn partition_day(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("visits_p")?;
    let year: i32 = digits.get(0..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(i64::from(
        date.to_julian_day() - time::OffsetDateTime::UNIX_EPOCH.date().to_julian_day(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = 1_800_000_000_000 / DAY_MS;
        let name = partition_name(day);
        assert_eq!(name, "visits_p20270115");
        assert_eq!(partition_day(&name), Some(day));
        assert_eq!(partition_day("visits_default"), None);
    }
}
