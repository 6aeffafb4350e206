//! # Placed reads: where each stored visit was heard, mobile readers included.
//!
//! A fixed station's reads are at its surveyed place. A mobile reader's (a patrol car or a
//! handheld) are where it was: the fix of the frame that reported the read (the reader's first
//! fix at or after the read's time; its latest when none is later). Tracks, area questions and
//! last locations answered from the store place visits by that rule, as the tracker does in
//! memory (its `readers` module), so an answer does not change
//! when a visit leaves memory. Each backend runs the same SQL.

use crate::{placed_visit_from_row, to_u32, Location, PlacedVisit, PlacedVisitRow, Result, Store};
use tagwatch_model::{GeoBox, GeoPoint, ReaderFix, StationId, TagId};

/// SQL for the `coord` (`lat` or `lon`) of a read made at `v.station` at time `t`, with the
/// station as `s`.
fn read_place(coord: &str, t: &str) -> String {
    format!(
        "COALESCE(\
           (SELECT f.{coord} FROM reader_fixes f WHERE f.station = v.station AND f.at_ms >= {t} \
            ORDER BY f.at_ms LIMIT 1), \
           (SELECT r.{coord} FROM readers r WHERE r.station = v.station), \
           s.{coord})"
    )
}

fn fix_from_row((station, at_ms, lat, lon): (i64, i64, f64, f64)) -> Result<ReaderFix> {
    Ok(ReaderFix {
        station: StationId(to_u32(station)?),
        at_ms,
        position: GeoPoint { lat, lon },
    })
}

impl Store {
    /// The visits of `tag` overlapping `[from_ms, to_ms]`, in time order, at most `limit`, each
    /// placed where it was heard.
    pub async fn track(
        &self,
        tag: TagId,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<PlacedVisit>> {
        let query = format!(
            "SELECT v.id, v.tag, v.station, v.first_seen, v.last_seen, v.best_rssi, v.reads, \
             {}, {} FROM visits v JOIN stations s ON s.id = v.station \
             WHERE v.tag = $1 AND v.first_seen <= $2 AND v.last_seen >= $3 \
             ORDER BY v.first_seen, v.id LIMIT $4",
            read_place("lat", "v.first_seen"),
            read_place("lon", "v.first_seen"),
        );
        let rows: Vec<PlacedVisitRow> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&query))
                .bind(i64::from(tag.0))
                .bind(to_ms)
                .bind(from_ms)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(placed_visit_from_row).collect()
    }

    /// Visits heard inside the box that overlap `[from_ms, to_ms]`, in time order, at most
    /// `limit`: at fixed stations inside it, and by mobile readers while they were inside it.
    pub async fn visits_in_box(
        &self,
        area: GeoBox,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<PlacedVisit>> {
        // Two arms: fixed stations found by their place (the index on visits by station), and
        // the few mobile readers' visits in the window, placed, then tested against the box.
        let query = format!(
            "SELECT * FROM ( \
               SELECT v.id, v.tag, v.station, v.first_seen, v.last_seen, v.best_rssi, v.reads, \
                      s.lat, s.lon \
               FROM stations s JOIN visits v ON v.station = s.id \
               WHERE s.lat BETWEEN $1 AND $2 AND s.lon BETWEEN $3 AND $4 \
                 AND v.first_seen <= $5 AND v.last_seen >= $6 \
                 AND NOT EXISTS (SELECT 1 FROM readers r WHERE r.station = s.id) \
               UNION ALL \
               SELECT * FROM ( \
                 SELECT v.id, v.tag, v.station, v.first_seen, v.last_seen, v.best_rssi, v.reads, \
                        {} AS lat, {} AS lon \
                 FROM readers m JOIN stations s ON s.id = m.station \
                 JOIN visits v ON v.station = m.station \
                 WHERE v.first_seen <= $5 AND v.last_seen >= $6 \
               ) mobile WHERE mobile.lat BETWEEN $1 AND $2 AND mobile.lon BETWEEN $3 AND $4 \
             ) placed ORDER BY placed.first_seen, placed.id LIMIT $7",
            read_place("lat", "v.first_seen"),
            read_place("lon", "v.first_seen"),
        );
        let rows: Vec<PlacedVisitRow> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&query))
                .bind(area.south)
                .bind(area.north)
                .bind(area.west)
                .bind(area.east)
                .bind(to_ms)
                .bind(from_ms)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(placed_visit_from_row).collect()
    }

    /// Where the tag was last heard, by its latest visits (placed where they were heard).
    pub async fn last_location(&self, tag: TagId) -> Result<Option<Location>> {
        let query = format!(
            "SELECT v.station, v.last_seen, {}, {} FROM \
             (SELECT station, last_seen FROM visits WHERE tag = $1 \
              ORDER BY first_seen DESC LIMIT 16) v \
             JOIN stations s ON s.id = v.station ORDER BY v.last_seen DESC LIMIT 1",
            read_place("lat", "v.last_seen"),
            read_place("lon", "v.last_seen"),
        );
        let row: Option<(i64, i64, f64, f64)> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&query))
                .bind(i64::from(tag.0))
                .fetch_optional(pool)
                .await?
        });
        row.map(|(station, seen_at_ms, lat, lon)| {
            Ok(Location {
                tag,
                station: StationId(to_u32(station)?),
                position: GeoPoint { lat, lon },
                seen_at_ms,
            })
        })
        .transpose()
    }

    /// Drops fixes from before `cutoff_ms` except those that place a kept visit (of a tag with
    /// an open theft case): the fix placing a visit is at most a thinning interval (a minute)
    /// after its last detection.
    pub(crate) async fn retain_reader_fixes(&self, cutoff_ms: i64) -> Result<u64> {
        let dropped = on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "DELETE FROM reader_fixes WHERE at_ms < $1 AND NOT EXISTS ( \
                   SELECT 1 FROM visits v JOIN cases c ON c.tag = v.tag AND c.closed_at IS NULL \
                   WHERE v.station = reader_fixes.station AND reader_fixes.at_ms >= v.first_seen \
                     AND reader_fixes.at_ms <= v.last_seen + 60000)",
            ))
            .bind(cutoff_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(dropped)
    }

    /// Every mobile reader's latest fix.
    pub async fn reader_positions(&self) -> Result<Vec<ReaderFix>> {
        let rows: Vec<(i64, i64, f64, f64)> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT station, at_ms, lat, lon FROM readers ORDER BY station",
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(fix_from_row).collect()
    }

    /// Mobile readers' fixes at or after `from_ms` (the tracker's memory after a restart), with
    /// each reader's latest in any case, oldest first.
    pub async fn reader_fixes_since(&self, from_ms: i64) -> Result<Vec<ReaderFix>> {
        let rows: Vec<(i64, i64, f64, f64)> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT station, at_ms, lat, lon FROM reader_fixes WHERE at_ms >= $1 \
                 UNION SELECT station, at_ms, lat, lon FROM readers \
                 ORDER BY at_ms, station",
            ))
            .bind(from_ms)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(fix_from_row).collect()
    }
}
