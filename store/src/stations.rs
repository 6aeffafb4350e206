//! # Stations: provisioning, keys, and their latest heartbeat. Both backends run the same SQL.

use crate::{is_unique_violation, to_u32, Error, Result, Store};
use tagwatch_model::{GeoPoint, Station, StationId, StationKey, StationStatus};

impl Store {
    pub async fn insert_station(
        &self,
        station: &Station,
        key: &StationKey,
        now_ms: i64,
    ) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            let result = sqlx::query(&sql(
                "INSERT INTO stations (id, name, lat, lon, key, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            ))
            .bind(i64::from(station.id.0))
            .bind(&station.name)
            .bind(station.position.lat)
            .bind(station.position.lon)
            .bind(key.as_bytes().as_slice())
            .bind(now_ms)
            .execute(pool)
            .await;
            match result {
                Err(e) if is_unique_violation(&e) => Err(Error::StationExists(station.id)),
                other => other.map(|_| ()).map_err(Error::from),
            }
        })
    }

    pub async fn station(&self, id: StationId) -> Result<Option<Station>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<(String, f64, f64)> =
                sqlx::query_as(&sql("SELECT name, lat, lon FROM stations WHERE id = $1"))
                    .bind(i64::from(id.0))
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|(name, lat, lon)| Station {
                id,
                name,
                position: GeoPoint { lat, lon },
            }))
        })
    }

    /// Every station with its key (the gateway's registry at start).
    pub async fn stations(&self) -> Result<Vec<(Station, StationKey)>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, String, f64, f64, Vec<u8>)> = sqlx::query_as(&sql(
                "SELECT id, name, lat, lon, key FROM stations ORDER BY id",
            ))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(id, name, lat, lon, key)| {
                    let key: [u8; 32] = key
                        .try_into()
                        .map_err(|_| Error::Corrupt(format!("station {id} key is not 32 bytes")))?;
                    Ok((
                        Station {
                            id: StationId(to_u32(id)?),
                            name,
                            position: GeoPoint { lat, lon },
                        },
                        StationKey(key),
                    ))
                })
                .collect()
        })
    }

    /// Every station with its last heartbeat, if it sent one.
    pub async fn stations_health(&self) -> Result<Vec<(Station, Option<StationStatus>)>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<crate::StationHealthRow> =
                sqlx::query_as(&sql(crate::STATIONS_HEALTH_SQL))
                    .fetch_all(pool)
                    .await?;
            rows.into_iter()
                .map(crate::station_health_from_row)
                .collect()
        })
    }

    pub async fn station_status(&self, station: StationId) -> Result<Option<StationStatus>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<crate::StatusRow> = sqlx::query_as(&sql(
                "SELECT received_at, station_time, uptime_s, backlog, fw_version, temp_c, power, \
                 tags_in_range FROM station_status WHERE station = $1",
            ))
            .bind(i64::from(station.0))
            .fetch_optional(pool)
            .await?;
            row.map(|r| crate::status_from_row(station, r)).transpose()
        })
    }
}
