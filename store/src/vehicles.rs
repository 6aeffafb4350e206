//! # Vehicles and theft cases: registration, owners, the stolen hotlist. Both backends run the
//! same SQL.

use crate::{is_unique_violation, to_u32, Error, Result, Store};
use tagwatch_model::{CaseId, TagId, UserId, Vehicle};

/// The columns of a [`Vehicle`], in [`VehicleColumns`]' order.
const VEHICLE: &str = "v.tag, v.plate, v.make, v.model, v.colour, v.owner_name, v.owner_phone";
type VehicleColumns = (i64, String, String, String, String, String, String);
/// A vehicle's columns and whether it has an open theft case.
type VehicleState = (i64, String, String, String, String, String, String, i64);
/// Whether `v` has an open theft case, as 0 or 1 (both backends).
const STOLEN: &str =
    "(SELECT count(*) FROM cases c WHERE c.tag = v.tag AND c.closed_at IS NULL) AS stolen";

pub(crate) fn vehicle_from(row: VehicleColumns) -> Result<Vehicle> {
    let (tag, plate, make, model, colour, owner_name, owner_phone) = row;
    Ok(Vehicle {
        tag: TagId(to_u32(tag)?),
        plate,
        make,
        model,
        colour,
        owner_name,
        owner_phone,
    })
}

fn stateful(rows: Vec<VehicleState>) -> Result<Vec<(Vehicle, bool)>> {
    rows.into_iter()
        .map(|(tag, plate, make, model, colour, name, phone, open)| {
            Ok((
                vehicle_from((tag, plate, make, model, colour, name, phone))?,
                open > 0,
            ))
        })
        .collect()
}

impl Store {
    pub async fn vehicle(&self, tag: TagId) -> Result<Option<Vehicle>> {
        on_backend!(self, reader, |pool, sql| {
            let row: Option<VehicleColumns> = sqlx::query_as(&sql(&format!(
                "SELECT {VEHICLE} FROM vehicles v WHERE v.tag = $1"
            )))
            .bind(i64::from(tag.0))
            .fetch_optional(pool)
            .await?;
            row.map(vehicle_from).transpose()
        })
    }

    /// Changes what is recorded of a registered vehicle (the tag stays): its plate,
    /// description and owner's contact.
    pub async fn update_vehicle(&self, vehicle: &Vehicle) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            let done = sqlx::query(&sql(
                "UPDATE vehicles SET plate = $1, plate_key = $2, make = $3, model = $4, \
                 colour = $5, owner_name = $6, owner_phone = $7 WHERE tag = $8",
            ))
            .bind(&vehicle.plate)
            .bind(tagwatch_model::plate_key(&vehicle.plate))
            .bind(&vehicle.make)
            .bind(&vehicle.model)
            .bind(&vehicle.colour)
            .bind(&vehicle.owner_name)
            .bind(&vehicle.owner_phone)
            .bind(i64::from(vehicle.tag.0))
            .execute(pool)
            .await;
            match done {
                Ok(done) if done.rows_affected() == 0 => Err(Error::NoSuchVehicle(vehicle.tag)),
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(Error::PlateExists(vehicle.plate.clone())),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Vehicles whose plate starts with `plate` (compared as [`tagwatch_model::plate_key`]s), the
    /// exact match first, at most `limit`, each with whether it is reported stolen.
    pub async fn vehicles_by_plate(&self, plate: &str, limit: u32) -> Result<Vec<(Vehicle, bool)>> {
        let key = tagwatch_model::plate_key(plate);
        // Every key with this prefix sorts below the prefix followed by the largest character
        // (bytewise: the C collation on Postgres, BINARY on SQLite).
        let end = format!("{key}{}", char::MAX);
        let rows: Vec<VehicleState> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&format!(
                "SELECT {VEHICLE}, {STOLEN} FROM vehicles v \
                 WHERE v.plate_key >= $1 AND v.plate_key < $2 \
                 ORDER BY v.plate_key <> $1, v.plate_key LIMIT $3"
            )))
            .bind(&key)
            .bind(&end)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        stateful(rows)
    }

    /// The registered vehicles among `tags` (to name the vehicles of an answer in one query).
    pub async fn vehicles_among(&self, tags: &[TagId]) -> Result<Vec<Vehicle>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = tags.iter().map(|t| i64::from(t.0)).collect();
        let rows: Vec<VehicleColumns> = match self {
            // The tag list as one JSON array: SQLite has no array parameters.
            Store::Sqlite(s) => {
                sqlx::query_as(&format!(
                    "SELECT {VEHICLE} FROM vehicles v \
                     WHERE v.tag IN (SELECT value FROM json_each(?))"
                ))
                .bind(serde_json::to_string(&ids).expect("integers serialize"))
                .fetch_all(&s.reader)
                .await?
            }
            Store::Postgres(s) => {
                sqlx::query_as(&format!(
                    "SELECT {VEHICLE} FROM vehicles v WHERE v.tag = ANY($1)"
                ))
                .bind(ids)
                .fetch_all(&s.reader)
                .await?
            }
        };
        rows.into_iter().map(vehicle_from).collect()
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
            let rows: Vec<VehicleColumns> = sqlx::query_as(&sql(&format!(
                "SELECT {VEHICLE} FROM vehicles v WHERE v.owner_id = $1 ORDER BY v.tag"
            )))
            .bind(owner.0)
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(vehicle_from).collect()
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
