//! # Case work: the open theft cases as a list (who each is assigned to, where the vehicle was
//! last sighted), and each case's history of what was done. Both backends run the same SQL.

use crate::{alert_from_row, to_u32, AlertRow, Result, Store};
use tagwatch_model::{Alert, CaseId, TagId};

/// A theft case as the case list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    pub id: CaseId,
    pub tag: TagId,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
    pub note: String,
    /// `report` (an owner or officer) or `hotlist` (an import).
    pub source: String,
    pub expires_at_ms: Option<i64>,
    pub assignee: Option<String>,
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEvent {
    pub at_ms: i64,
    pub actor: String,
    /// `assigned`, `unassigned`, `closed`.
    pub kind: String,
    pub detail: String,
}

type Row = (
    i64,
    i64,
    i64,
    Option<i64>,
    String,
    String,
    Option<i64>,
    Option<String>,
);
const COLUMNS: &str = "id, tag, opened_at, closed_at, note, source, expires_at, assignee";

fn row_from((id, tag, opened, closed, note, source, expires, assignee): Row) -> Result<CaseRow> {
    Ok(CaseRow {
        id: CaseId(id),
        tag: TagId(to_u32(tag)?),
        opened_at_ms: opened,
        closed_at_ms: closed,
        note,
        source,
        expires_at_ms: expires,
        assignee,
    })
}

impl Store {
    /// The open theft cases, the newest first.
    pub async fn open_case_rows(&self) -> Result<Vec<CaseRow>> {
        let rows: Vec<Row> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&format!(
                "SELECT {COLUMNS} FROM cases WHERE closed_at IS NULL ORDER BY opened_at DESC, id DESC"
            )))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(row_from).collect()
    }

    pub async fn case_row(&self, id: CaseId) -> Result<Option<CaseRow>> {
        let row: Option<Row> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(&format!("SELECT {COLUMNS} FROM cases WHERE id = $1")))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        });
        row.map(row_from).transpose()
    }

    /// Assigns an open case (`None`: to nobody), writing it to the case's history. False: no
    /// such open case.
    pub async fn assign_case(
        &self,
        id: CaseId,
        assignee: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<bool> {
        on_backend!(self, writer, |pool, sql| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(&sql(
                "UPDATE cases SET assignee = $1 WHERE id = $2 AND closed_at IS NULL",
            ))
            .bind(assignee)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            let (kind, detail) = match assignee {
                Some(who) => ("assigned", who),
                None => ("unassigned", ""),
            };
            sqlx::query(&sql(
                "INSERT INTO case_events (case_id, at, actor, kind, detail) \
                 VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(id.0)
            .bind(now_ms)
            .bind(actor)
            .bind(kind)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Adds an entry to a case's history.
    pub async fn add_case_event(&self, id: CaseId, event: &CaseEvent) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            sqlx::query(&sql(
                "INSERT INTO case_events (case_id, at, actor, kind, detail) \
                 VALUES ($1, $2, $3, $4, $5)",
            ))
            .bind(id.0)
            .bind(event.at_ms)
            .bind(&event.actor)
            .bind(&event.kind)
            .bind(&event.detail)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A case's history, oldest first.
    pub async fn case_events(&self, id: CaseId) -> Result<Vec<CaseEvent>> {
        let rows: Vec<(i64, String, String, String)> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT at, actor, kind, detail FROM case_events WHERE case_id = $1 ORDER BY id",
            ))
            .bind(id.0)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(at_ms, actor, kind, detail)| CaseEvent {
                at_ms,
                actor,
                kind,
                detail,
            })
            .collect())
    }

    /// The latest alert of `kind` about `tag` raised after `after_ms`, if any (a case's latest
    /// sighting).
    pub async fn latest_alert_of(
        &self,
        tag: TagId,
        kind: &str,
        after_ms: i64,
    ) -> Result<Option<Alert>> {
        let row: Option<AlertRow> = on_backend!(self, reader, |pool, sql| {
            sqlx::query_as(&sql(
                "SELECT seq, id, kind, tag, station, lat, lon, seen_at, raised_at, detail \
                 FROM alerts WHERE tag = $1 AND kind = $2 AND raised_at >= $3 \
                 ORDER BY seq DESC LIMIT 1",
            ))
            .bind(i64::from(tag.0))
            .bind(kind)
            .bind(after_ms)
            .fetch_optional(pool)
            .await?
        });
        row.map(alert_from_row).transpose()
    }
}
