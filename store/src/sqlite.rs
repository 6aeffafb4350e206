//! # The embedded SQLite backend (the default: a single file, nothing to install).
//!
//! WAL mode with `synchronous=FULL`: an ACK means the frame survives even a power cut. One writer
//! connection; readers run beside it.

use crate::{
    alert_detail_column, alert_tag_column, is_unique_violation, to_u32, visit_from_row, Batch,
    Error, Result, VisitRow, ROWS_PER_STATEMENT,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::str::FromStr;
use std::time::Duration;
use tagwatch_model::{TagId, Vehicle, Visit};

/// A SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite database at `url`, migrated.
    pub async fn open(url: &str) -> Result<Self> {
        let path = url
            .strip_prefix("sqlite:")
            .ok_or_else(|| Error::UnsupportedUrl(url.to_owned()))?;
        let memory = matches!(path, ":memory:" | "//:memory:");
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // The visits' indexes are updated at random places (one per tag): a 2 MB default
            // page cache makes every upsert a page read. 256 MiB keeps a city's hot pages.
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "memory")
            // FULL: an ACK means the frame survives even a power cut, not only a process crash.
            .synchronous(SqliteSynchronous::Full);
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        // An in-memory database lives in its one connection, which must never be recycled.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self { writer, reader })
    }

    /// Runs the migrations only (they are idempotent: `tagwatch migrate`).
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    // ---- stations ----

    // ---- vehicles and cases ----

    pub async fn insert_vehicle(&self, vehicle: &Vehicle, now_ms: i64) -> Result<()> {
        self.insert_vehicles(std::slice::from_ref(vehicle), now_ms)
            .await
    }

    /// Registers many vehicles in one transaction (bulk provisioning); all or none.
    pub async fn insert_vehicles(&self, vehicles: &[Vehicle], now_ms: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for vehicle in vehicles {
            let result = sqlx::query(
                "INSERT INTO vehicles \
                 (tag, plate, owner_name, owner_phone, created_at, make, model, colour, plate_key) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(i64::from(vehicle.tag.0))
            .bind(&vehicle.plate)
            .bind(&vehicle.owner_name)
            .bind(&vehicle.owner_phone)
            .bind(now_ms)
            .bind(&vehicle.make)
            .bind(&vehicle.model)
            .bind(&vehicle.colour)
            .bind(tagwatch_model::plate_key(&vehicle.plate))
            .execute(&mut *tx)
            .await;
            if let Err(e) = result {
                return Err(match &e {
                    sqlx::Error::Database(db)
                        if db.is_unique_violation() && db.message().contains("plate") =>
                    {
                        Error::PlateExists(vehicle.plate.clone())
                    }
                    _ if is_unique_violation(&e) => Error::TagExists(vehicle.tag),
                    _ => e.into(),
                });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- the flush ----

    /// A checkpoint's batch: SQLite has one writer, so it commits like any other (the flushes
    /// behind it wait).
    pub async fn commit_checkpoint(&self, batch: &Batch) -> Result<()> {
        self.commit(batch).await
    }

    /// Writes one batch in a single transaction, with multi-row statements (one statement per
    /// [`ROWS_PER_STATEMENT`] rows rather than one per row: the per-statement cost dominates).
    pub async fn commit(&self, batch: &Batch) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        // SQLite rewrites every index holding a column the SET clause assigns, changed or not:
        // extensions assign only the columns that moved, which spares the two first_seen indexes.
        upsert_visits(
            &mut tx,
            &batch.visits,
            "first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
             best_rssi = excluded.best_rssi, reads = excluded.reads",
        )
        .await?;
        upsert_visits(
            &mut tx,
            &batch.extended_visits,
            "last_seen = excluded.last_seen, best_rssi = excluded.best_rssi, \
             reads = excluded.reads",
        )
        .await?;
        for chunk in batch.journal.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO frame_journal (seq, applied_at, first_visit_id, frame) ",
            );
            q.push_values(chunk, |mut row, j| {
                row.push_bind(j.seq)
                    .push_bind(j.applied_at_ms)
                    .push_bind(j.first_visit_id)
                    .push_bind(j.frame.as_slice());
            });
            q.build().execute(&mut *tx).await?;
        }
        if let Some(done) = batch.journal_done_through {
            sqlx::query("DELETE FROM frame_journal WHERE seq <= ?")
                .bind(done)
                .execute(&mut *tx)
                .await?;
        }
        for chunk in batch.deleted_visits.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("DELETE FROM visits WHERE id IN (");
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(id.0);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
        for chunk in batch.alerts.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO alerts (seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail) ",
            );
            q.push_values(chunk, |mut row, a| {
                row.push_bind(a.seq)
                    .push_bind(a.id.0.as_str())
                    .push_bind(a.kind.as_str())
                    .push_bind(alert_tag_column(a))
                    .push_bind(i64::from(a.station.0))
                    .push_bind(a.position.lat)
                    .push_bind(a.position.lon)
                    .push_bind(a.seen_at_ms)
                    .push_bind(a.raised_at_ms)
                    .push_bind(alert_detail_column(a));
            });
            // The id is deterministic: a frame applied again after a crash finds its alert here.
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *tx).await?;
        }
        let now = tagwatch_model::time::now_ms();
        for chunk in batch.watermarks.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO watermarks (station, session, contiguous, above, updated_at) ",
            );
            q.push_values(chunk, |mut row, w| {
                let above = crate::join_seqs(&w.above);
                row.push_bind(i64::from(w.station.0))
                    .push_bind(i64::from(w.session.0))
                    .push_bind(i64::from(w.contiguous))
                    .push_bind(above)
                    .push_bind(now);
            });
            q.push(
                " ON CONFLICT (station, session) DO UPDATE SET \
                 contiguous = excluded.contiguous, above = excluded.above, \
                 updated_at = excluded.updated_at",
            );
            q.build().execute(&mut *tx).await?;
        }
        for chunk in batch.statuses.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO station_status (station, received_at, station_time, uptime_s, \
                 backlog, fw_version, temp_c, power, tags_in_range) ",
            );
            q.push_values(chunk, |mut row, s| {
                row.push_bind(i64::from(s.station.0))
                    .push_bind(s.received_at_ms)
                    .push_bind(s.station_time_ms)
                    .push_bind(i64::from(s.uptime_s))
                    .push_bind(i64::from(s.backlog))
                    .push_bind(i64::from(s.fw_version))
                    .push_bind(i64::from(s.temp_c))
                    .push_bind(i64::from(s.power))
                    .push_bind(i64::from(s.tags_in_range));
            });
            q.push(
                " ON CONFLICT (station) DO UPDATE SET \
                 received_at = excluded.received_at, station_time = excluded.station_time, \
                 uptime_s = excluded.uptime_s, backlog = excluded.backlog, \
                 fw_version = excluded.fw_version, temp_c = excluded.temp_c, \
                 power = excluded.power, tags_in_range = excluded.tags_in_range",
            );
            q.build().execute(&mut *tx).await?;
        }
        for chunk in batch.reader_fixes.chunks(ROWS_PER_STATEMENT) {
            // The same rows go to both tables: every fix, and each reader's latest.
            for (table, conflict) in [
                ("reader_fixes", " ON CONFLICT (station, at_ms) DO NOTHING"),
                (
                    "readers",
                    " ON CONFLICT (station) DO UPDATE SET at_ms = excluded.at_ms, \
                     lat = excluded.lat, lon = excluded.lon WHERE excluded.at_ms > readers.at_ms",
                ),
            ] {
                let mut q = QueryBuilder::<Sqlite>::new(format!(
                    "INSERT INTO {table} (station, at_ms, lat, lon) "
                ));
                q.push_values(chunk, |mut row, f| {
                    row.push_bind(i64::from(f.station.0))
                        .push_bind(f.at_ms)
                        .push_bind(f.position.lat)
                        .push_bind(f.position.lon);
                });
                q.push(conflict);
                q.build().execute(&mut *tx).await?;
            }
        }
        if let Some(step) = &batch.partition {
            crate::partitions::advance_partition!(&mut tx, step, |q: &str| q.replace('$', "?"));
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes visits that ended before `cutoff_ms`, except those of tags with an open case.
    pub async fn retain(&self, cutoff_ms: i64) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM visits WHERE last_seen < ? \
             AND tag NOT IN (SELECT tag FROM cases WHERE closed_at IS NULL)",
        )
        .bind(cutoff_ms)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    // ---- accounts, tokens, owners, audit ----

    // ---- restart ----

    /// Visits that may still grow: those whose last detection is within `window_ms` of the
    /// latest stored detection.
    pub async fn open_visits(&self, window_ms: i64) -> Result<Vec<Visit>> {
        let rows: Vec<VisitRow> = sqlx::query_as(
            "SELECT id, tag, station, first_seen, last_seen, best_rssi, reads FROM visits \
             WHERE last_seen >= (SELECT MAX(last_seen) FROM visits) - ? ORDER BY id",
        )
        .bind(window_ms)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(visit_from_row).collect()
    }

    // ---- queries ----

    /// The tag heard most recently, if any.
    pub async fn most_recent_tag(&self) -> Result<Option<TagId>> {
        let tag: Option<i64> =
            sqlx::query_scalar("SELECT tag FROM visits ORDER BY last_seen DESC LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        tag.map(|t| Ok(TagId(to_u32(t)?))).transpose()
    }
}

/// Inserts visits, or on an existing id assigns the `set` columns (a visit whose earlier row is
/// missing, which cannot happen as flushes commit in order, is still written whole).
async fn upsert_visits(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    visits: &[Visit],
    set: &str,
) -> Result<()> {
    for chunk in visits.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO visits (id, tag, station, first_seen, last_seen, best_rssi, reads) ",
        );
        q.push_values(chunk, |mut row, v| {
            row.push_bind(v.id.0)
                .push_bind(i64::from(v.tag.0))
                .push_bind(i64::from(v.station.0))
                .push_bind(v.first_seen_ms)
                .push_bind(v.last_seen_ms)
                .push_bind(i64::from(v.best_rssi))
                .push_bind(i64::from(v.reads));
        });
        q.push(" ON CONFLICT (id) DO UPDATE SET ");
        q.push(set);
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
