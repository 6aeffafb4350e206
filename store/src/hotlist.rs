//! # Cases from a national stolen-vehicle list: an import opens or updates them in one
//! transaction, and those whose entry lapses are closed. Both backends run the same SQL.

use crate::{to_u32, Result, Store};
use tagwatch_model::{CaseId, TagId};

/// Which vehicle a list's line names: our tag, or its plate (compared as a
/// [`tagwatch_model::plate_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Tag(TagId),
    Plate(String),
}

/// One line of a list, checked.
#[derive(Debug, Clone)]
pub struct HotlistEntry {
    pub vehicle: Listed,
    pub reported_at_ms: i64,
    /// When the list's entry lapses (`None`: never).
    pub expires_at_ms: Option<i64>,
    /// The list's reason, kept as the case's note.
    pub note: String,
}

/// What an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HotlistOutcome {
    /// A new case: the vehicle is stolen from now on.
    Opened(TagId, CaseId),
    /// The case an earlier import opened, its reason and expiry replaced.
    Updated(TagId, CaseId),
    /// Already reported stolen by its owner or the police: that case stays as it is (a list's
    /// expiry never closes a case someone reported).
    AlreadyReported(TagId, CaseId),
    /// No registered vehicle has this tag or plate.
    Unknown,
    /// The plate is on this many registered vehicles: the line must give the tag.
    Ambiguous(usize),
}

impl Store {
    /// Applies a list's entries in one transaction, in order; one outcome per entry.
    pub async fn apply_hotlist(&self, entries: &[HotlistEntry]) -> Result<Vec<HotlistOutcome>> {
        on_backend!(self, writer, |pool, sql| {
            let mut tx = pool.begin().await?;
            let mut outcomes = Vec::with_capacity(entries.len());
            for entry in entries {
                let tags: Vec<i64> = match &entry.vehicle {
                    Listed::Tag(tag) => {
                        sqlx::query_scalar(&sql("SELECT tag FROM vehicles WHERE tag = $1"))
                            .bind(i64::from(tag.0))
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    Listed::Plate(plate) => {
                        sqlx::query_scalar(&sql("SELECT tag FROM vehicles WHERE plate_key = $1"))
                            .bind(tagwatch_model::plate_key(plate))
                            .fetch_all(&mut *tx)
                            .await?
                    }
                };
                let tag = match tags.as_slice() {
                    [] => {
                        outcomes.push(HotlistOutcome::Unknown);
                        continue;
                    }
                    [one] => TagId(to_u32(*one)?),
                    many => {
                        outcomes.push(HotlistOutcome::Ambiguous(many.len()));
                        continue;
                    }
                };
                let open: Option<(i64, String)> = sqlx::query_as(&sql(
                    "SELECT id, source FROM cases WHERE tag = $1 AND closed_at IS NULL",
                ))
                .bind(i64::from(tag.0))
                .fetch_optional(&mut *tx)
                .await?;
                let outcome = match open {
                    None => {
                        let id: i64 = sqlx::query_scalar(&sql(
                            "INSERT INTO cases (tag, opened_at, note, source, expires_at) \
                             VALUES ($1, $2, $3, 'hotlist', $4) RETURNING id",
                        ))
                        .bind(i64::from(tag.0))
                        .bind(entry.reported_at_ms)
                        .bind(&entry.note)
                        .bind(entry.expires_at_ms)
                        .fetch_one(&mut *tx)
                        .await?;
                        HotlistOutcome::Opened(tag, CaseId(id))
                    }
                    Some((id, source)) if source == "hotlist" => {
                        sqlx::query(&sql(
                            "UPDATE cases SET note = $1, expires_at = $2 WHERE id = $3",
                        ))
                        .bind(&entry.note)
                        .bind(entry.expires_at_ms)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        HotlistOutcome::Updated(tag, CaseId(id))
                    }
                    Some((id, _)) => HotlistOutcome::AlreadyReported(tag, CaseId(id)),
                };
                outcomes.push(outcome);
            }
            tx.commit().await?;
            Ok(outcomes)
        })
    }

    /// Closes the open cases whose list entry lapsed by `now_ms`; each is returned once, to the
    /// one caller whose update closed it (several API nodes may sweep at once).
    pub async fn close_expired_cases(&self, now_ms: i64) -> Result<Vec<(TagId, CaseId)>> {
        on_backend!(self, writer, |pool, sql| {
            let rows: Vec<(i64, i64)> = sqlx::query_as(&sql("UPDATE cases SET closed_at = $1 \
                 WHERE closed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
                 RETURNING tag, id"))
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(tag, id)| Ok((TagId(to_u32(tag)?), CaseId(id))))
                .collect()
        })
    }
}
