//! # The police response: decisions about alerts, and patrol units' positions.
//!
//! Written by the API as officers act; read back with each alert and to find the units nearest
//! to one. Low volume, so both backends run the same SQL.

use crate::{alert_from_row, AlertRow, Error, Result, Store};
use tagwatch_model::{ActionKind, Alert, AlertAction, GeoPoint, PatrolUnit};

type ActionRow = (i64, i64, String, Option<String>, String, String, i64);
type UnitRow = (String, String, f64, f64, bool, i64);

fn action_from_row(row: ActionRow) -> Result<AlertAction> {
    let (id, alert_seq, action, unit, reason, actor, at_ms) = row;
    let action = ActionKind::parse(&action)
        .ok_or_else(|| Error::Corrupt(format!("alert action {action:?}")))?;
    Ok(AlertAction {
        id,
        alert_seq,
        action,
        unit,
        reason,
        actor,
        at_ms,
    })
}

fn unit_from_row(row: UnitRow) -> PatrolUnit {
    let (unit, officer, lat, lon, available, reported_at_ms) = row;
    PatrolUnit {
        unit,
        officer,
        position: GeoPoint { lat, lon },
        available,
        reported_at_ms,
    }
}

impl Store {
    /// The alert with sequence number `seq`, if stored.
    pub async fn alert(&self, seq: i64) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail \
                 FROM alerts WHERE seq = $1",
            ))
            .bind(seq)
            .fetch_optional(pool)
            .await?
        });
        row.map(alert_from_row).transpose()
    }

    /// Appends to an alert's response history; returns the entry with its id.
    pub async fn add_alert_action(&self, action: &AlertAction) -> Result<AlertAction> {
        let id: i64 = on_backend!(self, |pool, sql| {
            sqlx::query_scalar(&sql(
                "INSERT INTO alert_actions (alert_seq, action, unit, reason, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            ))
            .bind(action.alert_seq)
            .bind(action.action.as_str())
            .bind(action.unit.as_deref())
            .bind(&action.reason)
            .bind(&action.actor)
            .bind(action.at_ms)
            .fetch_one(pool)
            .await?
        });
        Ok(AlertAction {
            id,
            ..action.clone()
        })
    }

    /// An alert's response history, oldest first.
    pub async fn alert_actions(&self, seq: i64) -> Result<Vec<AlertAction>> {
        let rows: Vec<ActionRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT id, alert_seq, action, unit, reason, actor, at FROM alert_actions \
                 WHERE alert_seq = $1 ORDER BY id",
            ))
            .bind(seq)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(action_from_row).collect()
    }

    /// The response histories of the alerts with `first <= seq <= last`, oldest first (a page
    /// of alerts' statuses in one query).
    pub async fn alert_actions_between(&self, first: i64, last: i64) -> Result<Vec<AlertAction>> {
        let rows: Vec<ActionRow> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT id, alert_seq, action, unit, reason, actor, at FROM alert_actions \
                 WHERE alert_seq BETWEEN $1 AND $2 ORDER BY id",
            ))
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(action_from_row).collect()
    }

    /// Records where a patrol unit is and whether it is free (creating the unit on first report).
    /// A unit another officer reported at or after `takeover_before_ms` is theirs: nothing is
    /// written and the answer is false.
    pub async fn report_unit(&self, unit: &PatrolUnit, takeover_before_ms: i64) -> Result<bool> {
        let written = on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO patrol_units (unit, officer, lat, lon, available, reported_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (unit) DO UPDATE SET \
                 officer = excluded.officer, lat = excluded.lat, lon = excluded.lon, \
                 available = excluded.available, reported_at = excluded.reported_at \
                 WHERE patrol_units.officer = excluded.officer \
                 OR patrol_units.reported_at < $7",
            ))
            .bind(&unit.unit)
            .bind(&unit.officer)
            .bind(unit.position.lat)
            .bind(unit.position.lon)
            .bind(unit.available)
            .bind(unit.reported_at_ms)
            .bind(takeover_before_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(written > 0)
    }

    /// Frees the units sent to alert `seq` that are still on it (busy, and not sent anywhere
    /// since): the alert was a false hit. Returns their call signs.
    pub async fn free_units_sent_to(&self, seq: i64) -> Result<Vec<String>> {
        let freed: Vec<(String,)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "UPDATE patrol_units SET available = $2 WHERE available = $3 AND unit IN ( \
                   SELECT sent.unit FROM alert_actions sent \
                   WHERE sent.alert_seq = $1 AND sent.action = 'dispatched' \
                   AND NOT EXISTS (SELECT 1 FROM alert_actions later \
                     WHERE later.unit = sent.unit AND later.action = 'dispatched' \
                     AND later.id > sent.id)) \
                 RETURNING unit",
            ))
            .bind(seq)
            .bind(true)
            .bind(false)
            .fetch_all(pool)
            .await?
        });
        Ok(freed.into_iter().map(|(unit,)| unit).collect())
    }

    /// Marks a unit busy (dispatched) or free; false if there is no such unit.
    pub async fn set_unit_available(&self, unit: &str, available: bool) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE patrol_units SET available = $1 WHERE unit = $2",
            ))
            .bind(available)
            .bind(unit)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Every patrol unit, by call sign.
    pub async fn units(&self) -> Result<Vec<PatrolUnit>> {
        let rows: Vec<UnitRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT unit, officer, lat, lon, available, reported_at FROM patrol_units \
                 ORDER BY unit",
            ))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(unit_from_row).collect())
    }
}
