//! # What administrators list and set: accounts, registered vehicles, runtime settings.
//!
//! Low volume, so both backends run the same SQL.

use crate::{Error, Result, Store};
use tagwatch_model::{Role, TagId, Vehicle};

/// An account as an administrator sees it (never its password hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at_ms: i64,
    /// Tokens not expired and not revoked.
    pub live_tokens: i64,
}

/// A registered vehicle with its owner's account and whether it is reported stolen.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleRow {
    pub vehicle: Vehicle,
    pub owner: Option<String>,
    pub stolen: bool,
}

type AccountRow = (i64, String, String, i64, i64);
type VehicleTuple = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
);

impl Store {
    /// Every account, by id, with how many of its tokens are live at `now_ms`.
    pub async fn accounts(&self, now_ms: i64) -> Result<Vec<Account>> {
        let rows: Vec<AccountRow> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql("SELECT u.id, u.username, u.role, u.created_at, \
                 (SELECT count(*) FROM tokens t WHERE t.user_id = u.id \
                  AND t.revoked_at IS NULL AND t.expires_at > $1) \
                 FROM users u ORDER BY u.id"))
            .bind(now_ms)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, username, role, created_at_ms, live_tokens)| {
                Ok(Account {
                    id,
                    username,
                    role: Role::parse(&role)
                        .ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
                    created_at_ms,
                    live_tokens,
                })
            })
            .collect()
    }

    /// Registered vehicles with tags above `after`, by tag, at most `limit`.
    pub async fn vehicles_page(&self, after: TagId, limit: u32) -> Result<Vec<VehicleRow>> {
        let rows: Vec<VehicleTuple> = on_backend!(self, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT v.tag, v.plate, v.make, v.model, v.colour, v.owner_name, v.owner_phone, \
                 u.username, \
                 (SELECT count(*) FROM cases c WHERE c.tag = v.tag AND c.closed_at IS NULL) \
                 FROM vehicles v LEFT JOIN users u ON u.id = v.owner_id \
                 WHERE v.tag > $1 ORDER BY v.tag LIMIT $2",
            ))
            .bind(i64::from(after.0))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(
                |(tag, plate, make, model, colour, owner_name, owner_phone, owner, open)| {
                    Ok(VehicleRow {
                        vehicle: crate::vehicles::vehicle_from((
                            tag,
                            plate,
                            make,
                            model,
                            colour,
                            owner_name,
                            owner_phone,
                        ))?,
                        owner,
                        stolen: open > 0,
                    })
                },
            )
            .collect()
    }

    /// A runtime setting, if an administrator set it.
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(on_backend!(self, |pool, sql| {
            sqlx::query_scalar(&sql("SELECT value FROM settings WHERE key = $1"))
                .bind(key)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Sets a runtime setting.
    pub async fn set_setting(&self, key: &str, value: &str, by: &str, now_ms: i64) -> Result<()> {
        on_backend!(self, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO settings (key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            ))
            .bind(key)
            .bind(value)
            .bind(by)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }
}
