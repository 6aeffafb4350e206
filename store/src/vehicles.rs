//! # Vehicles and theft cases: registration, owners, the stolen hotlist. Both backends run the
//! same SQL.

use crate::{is_unique_violation, to_u32, Error, Result, Store};
use tagwatch_model::{CaseId, TagId, UserId, Vehicle};

impl Store {
    pub async fn vehicle(&self, tag: TagId) -> Result<Option<Vehicle>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<(String, String, String)> = sqlx::query_as(&sql(
                "SELECT plate, owner_name, owner_phone FROM vehicles WHERE tag = $1",
            ))
            .bind(i64::from(tag.0))
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(plate, owner_name, owner_phone)| Vehicle {
                tag,
                plate,
                owner_name,
                owner_phone,
            }))
        })
    }

    /// The owner of a registered vehicle (`None` inside when it has none).
    pub async fn vehicle_owner(&self, tag: TagId) -> Result<Option<Option<UserId>>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<(Option<i64>,)> =
                sqlx::query_as(&sql("SELECT owner_id FROM vehicles WHERE tag = $1"))
                    .bind(i64::from(tag.0))
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|(owner,)| owner.map(UserId)))
        })
    }

    pub async fn vehicles_of(&self, owner: UserId) -> Result<Vec<Vehicle>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, String, String, String)> = sqlx::query_as(&sql(
                "SELECT tag, plate, owner_name, owner_phone FROM vehicles WHERE owner_id = $1 \
                 ORDER BY tag",
            ))
            .bind(owner.0)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(tag, plate, owner_name, owner_phone)| {
                    Ok(Vehicle {
                        tag: TagId(to_u32(tag)?),
                        plate,
                        owner_name,
                        owner_phone,
                    })
                })
                .collect()
        })
    }

    pub async fn set_vehicle_owner(&self, tag: TagId, owner: UserId) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            let done = sqlx::query(&sql("UPDATE vehicles SET owner_id = $1 WHERE tag = $2"))
                .bind(owner.0)
                .bind(i64::from(tag.0))
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Error::NoSuchVehicle(tag));
            }
            Ok(())
        })
    }

    /// Opens a theft case for a registered vehicle.
    pub async fn open_case(&self, tag: TagId, opened_at_ms: i64, note: &str) -> Result<CaseId> {
        on_backend!(self, writer, |pool, sql| {
            if self.vehicle(tag).await?.is_none() {
                return Err(Error::NoSuchVehicle(tag));
            }
            let result = sqlx::query_scalar::<_, i64>(&sql(
                "INSERT INTO cases (tag, opened_at, note) VALUES ($1, $2, $3) RETURNING id",
            ))
            .bind(i64::from(tag.0))
            .bind(opened_at_ms)
            .bind(note)
            .fetch_one(pool)
            .await;
            match result {
                Ok(id) => Ok(CaseId(id)),
                Err(e) if is_unique_violation(&e) => Err(Error::CaseAlreadyOpen(tag)),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Closes the open theft case of `tag` (the vehicle was recovered).
    pub async fn close_case(&self, tag: TagId, closed_at_ms: i64) -> Result<CaseId> {
        on_backend!(self, writer, |pool, sql| {
            let id: Option<i64> = sqlx::query_scalar(&sql(
                "UPDATE cases SET closed_at = $1 WHERE tag = $2 AND closed_at IS NULL RETURNING id",
            ))
            .bind(closed_at_ms)
            .bind(i64::from(tag.0))
            .fetch_optional(pool)
            .await?;
            id.map(CaseId).ok_or(Error::NoOpenCase(tag))
        })
    }

    /// The open theft case of `tag`, if any.
    pub async fn open_case_of(&self, tag: TagId) -> Result<Option<CaseId>> {
        on_backend!(self, reader, |pool, sql| {
            let id: Option<i64> = sqlx::query_scalar(&sql(
                "SELECT id FROM cases WHERE tag = $1 AND closed_at IS NULL",
            ))
            .bind(i64::from(tag.0))
            .fetch_optional(pool)
            .await?;
            Ok(id.map(CaseId))
        })
    }

    /// Tags with an open theft case (the tracker's hotlist at start).
    pub async fn open_cases(&self) -> Result<Vec<(TagId, CaseId)>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<(i64, i64)> = sqlx::query_as(&sql(
                "SELECT tag, id FROM cases WHERE closed_at IS NULL ORDER BY id",
            ))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(tag, id)| Ok((TagId(to_u32(tag)?), CaseId(id))))
                .collect()
        })
    }
}
