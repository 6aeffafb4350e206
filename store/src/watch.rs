//! # Watch lists: geofences, companion pairs and armed (guarded) vehicles.
//!
//! The tracker holds these in memory and checks every detection against them; the store keeps
//! them so they survive a restart (the server loads them into the tracker at start). They change
//! rarely, through the admin and owner API, so each backend runs the same SQL.

use crate::{to_u32, Error, Result, Store};
use tagwatch_model::{GeoPoint, Geofence, StationId, TagId, UserId};

/// What is stored of a fence: everything but its id, which is the row's.
fn definition(fence: &Geofence) -> Result<String> {
    serde_json::to_string(&Geofence {
        id: 0,
        ..fence.clone()
    })
    .map_err(|e| Error::Corrupt(format!("geofence does not serialise: {e}")))
}

fn fence_from_row((id, json): (i64, String)) -> Result<Geofence> {
    let fence: Geofence =
        serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("geofence {id}: {e}")))?;
    Ok(Geofence { id, ..fence })
}

impl Store {
    /// Arms a vehicle where it is parked (replacing an earlier arming).
    pub async fn arm(
        &self,
        tag: TagId,
        armed_at_ms: i64,
        station: StationId,
        at: GeoPoint,
    ) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO guards (tag, armed_at, station, lat, lon, disarmed_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL) \
                 ON CONFLICT (tag) DO UPDATE SET armed_at = excluded.armed_at, \
                 station = excluded.station, lat = excluded.lat, lon = excluded.lon, \
                 disarmed_at = NULL",
            ))
            .bind(i64::from(tag.0))
            .bind(armed_at_ms)
            .bind(i64::from(station.0))
            .bind(at.lat)
            .bind(at.lon)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// When the vehicle was armed, if it is armed now.
    pub async fn armed_at(&self, tag: TagId) -> Result<Option<i64>> {
        Ok(on_backend!(self, reader, |pool, sql| {
            sqlx::query_scalar(&sql(
                "SELECT armed_at FROM guards WHERE tag = $1 AND disarmed_at IS NULL",
            ))
            .bind(i64::from(tag.0))
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Disarms a vehicle at `at_ms`; false if it was not armed.
    pub async fn disarm(&self, tag: TagId, at_ms: i64) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE guards SET disarmed_at = $2 WHERE tag = $1 AND disarmed_at IS NULL",
            ))
            .bind(i64::from(tag.0))
            .bind(at_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// When the owner last had the vehicle by what they told us: the later of its last arming
    /// or disarming and its last recovery (a closed theft case), if any.
    pub async fn owner_last_had(&self, tag: TagId) -> Result<Option<i64>> {
        let row: (Option<i64>,) = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT MAX(at) FROM ( \
                   SELECT COALESCE(disarmed_at, armed_at) AS at FROM guards WHERE tag = $1 \
                   UNION ALL \
                   SELECT closed_at AS at FROM cases WHERE tag = $1 AND closed_at IS NOT NULL \
                 ) AS changes"))
            .bind(i64::from(tag.0))
            .fetch_one(pool)
            .await?
        });
        Ok(row.0)
    }

    /// Every armed vehicle and where it was armed (the tracker's guards at start).
    pub async fn guards(&self) -> Result<Vec<(TagId, StationId, GeoPoint)>> {
        let rows: Vec<(i64, i64, f64, f64)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT tag, station, lat, lon FROM guards WHERE disarmed_at IS NULL ORDER BY tag",
            ))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(tag, station, lat, lon)| {
                Ok((
                    TagId(to_u32(tag)?),
                    StationId(to_u32(station)?),
                    GeoPoint { lat, lon },
                ))
            })
            .collect()
    }

    /// Stores a new geofence; returns it with its id.
    pub async fn insert_geofence(
        &self,
        fence: &Geofence,
        by: UserId,
        now_ms: i64,
    ) -> Result<Geofence> {
        let json = definition(fence)?;
        let id: i64 = on_backend!(self, |pool, sql| {
            sqlx::query_scalar(&sql(
                "INSERT INTO geofences (definition, created_by, created_at) \
                 VALUES ($1, $2, $3) RETURNING id",
            ))
            .bind(&json)
            .bind(by.0)
            .bind(now_ms)
            .fetch_one(pool)
            .await?
        });
        Ok(Geofence {
            id,
            ..fence.clone()
        })
    }

    /// Deletes a geofence; false if there was none with that id.
    pub async fn delete_geofence(&self, id: i64) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql("DELETE FROM geofences WHERE id = $1"))
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Every geofence, by id.
    pub async fn geofences(&self) -> Result<Vec<Geofence>> {
        let rows: Vec<(i64, String)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT id, definition FROM geofences ORDER BY id"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(fence_from_row).collect()
    }

    /// Pairs `tag` with `companion` (replacing an earlier companion).
    pub async fn pair(&self, tag: TagId, companion: TagId, by: UserId, now_ms: i64) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO companions (tag, companion, created_by, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (tag) DO UPDATE SET \
                 companion = excluded.companion, created_by = excluded.created_by, \
                 created_at = excluded.created_at",
            ))
            .bind(i64::from(tag.0))
            .bind(i64::from(companion.0))
            .bind(by.0)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Removes the pairing of `tag`; false if it had none.
    pub async fn unpair(&self, tag: TagId) -> Result<bool> {
        let done = on_backend!(self, |pool, sql| {
            sqlx::query(&sql("DELETE FROM companions WHERE tag = $1"))
                .bind(i64::from(tag.0))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// The companion `tag` is paired with, if any.
    pub async fn companion_of(&self, tag: TagId) -> Result<Option<TagId>> {
        let row: Option<i64> = on_backend!(self, |pool, sql| {
            sqlx::query_scalar(&sql("SELECT companion FROM companions WHERE tag = $1"))
                .bind(i64::from(tag.0))
                .fetch_optional(pool)
                .await?
        });
        row.map(|c| to_u32(c).map(TagId)).transpose()
    }

    /// Every pair (tag, companion), by tag.
    pub async fn pairs(&self) -> Result<Vec<(TagId, TagId)>> {
        let rows: Vec<(i64, i64)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT tag, companion FROM companions ORDER BY tag"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|(t, c)| Ok((TagId(to_u32(t)?), TagId(to_u32(c)?))))
            .collect()
    }
}

/// A police district: a named area officers filter their alerts by.
#[derive(Debug, Clone, PartialEq)]
pub struct Precinct {
    pub id: i64,
    pub name: String,
    pub area: Vec<GeoPoint>,
}

fn precinct_from_row((id, name, json): (i64, String, String)) -> Result<Precinct> {
    let area =
        serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("precinct {id}: {e}")))?;
    Ok(Precinct { id, name, area })
}

impl Store {
    /// Stores a new precinct; returns its id. A name already taken is a conflict.
    pub async fn insert_precinct(&self, name: &str, area: &[GeoPoint], now_ms: i64) -> Result<i64> {
        let json = serde_json::to_string(area)
            .map_err(|e| Error::Corrupt(format!("precinct outline: {e}")))?;
        let inserted: std::result::Result<i64, sqlx::Error> = on_backend!(self, |pool, sql| {
            sqlx::query_scalar(&sql(
                "INSERT INTO precincts (name, area, created_at) VALUES ($1, $2, $3) RETURNING id",
            ))
            .bind(name)
            .bind(&json)
            .bind(now_ms)
            .fetch_one(pool)
            .await
        });
        inserted.map_err(|e| match crate::is_unique_violation(&e) {
            true => Error::Conflict(format!("precinct {name:?} already exists")),
            false => e.into(),
        })
    }

    /// The precinct with this id, if any.
    pub async fn precinct(&self, id: i64) -> Result<Option<Precinct>> {
        let row: Option<(i64, String, String)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT id, name, area FROM precincts WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(precinct_from_row).transpose()
    }

    /// Every precinct, by id.
    pub async fn precincts(&self) -> Result<Vec<Precinct>> {
        let rows: Vec<(i64, String, String)> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT id, name, area FROM precincts ORDER BY id"))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(precinct_from_row).collect()
    }
}
