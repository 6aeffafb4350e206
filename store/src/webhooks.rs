//! # Webhooks and their deliveries: who hears of alerts, and every delivery kept (queued, sent,
//! retried, delivered or expired) until it is settled, across restarts. Several senders (API
//! nodes) may work the same queue: a due delivery is claimed for a while by one of them with a
//! single conditional update. Both backends run the same SQL.

use crate::{Result, Store};

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Alert kinds it wants (empty: every kind).
    pub kinds: Vec<String>,
    /// Signs its deliveries; never shown after registration.
    pub secret: String,
    pub created_by: String,
    pub created_at_ms: i64,
    /// The last alert already queued for it.
    pub queued_to: i64,
}

/// One alert's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub alert_seq: i64,
    /// `pending`, `delivered`, `expired` (gave up), or `cancelled` (its webhook was removed).
    pub state: String,
    pub attempts: i64,
    pub created_at_ms: i64,
    pub next_attempt_at_ms: i64,
    pub last_attempt_at_ms: Option<i64>,
    /// What the last attempt got: `HTTP 200`, `HTTP 503`, a connection error, ...
    pub outcome: String,
}

type WebhookRow = (i64, String, String, String, String, i64, i64);
type DeliveryRow = (i64, i64, i64, String, i64, i64, i64, Option<i64>, String);

const WEBHOOK: &str = "id, url, kinds, secret, created_by, created_at, queued_to";
const DELIVERY: &str = "id, webhook_id, alert_seq, state, attempts, created_at, next_attempt_at, \
                        last_attempt_at, outcome";

fn webhook_from(
    (id, url, kinds, secret, created_by, created_at_ms, queued_to): WebhookRow,
) -> Webhook {
    Webhook {
        id,
        url,
        kinds: kinds
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        secret,
        created_by,
        created_at_ms,
        queued_to,
    }
}

fn delivery_from(row: DeliveryRow) -> Delivery {
    let (
        id,
        webhook_id,
        alert_seq,
        state,
        attempts,
        created_at_ms,
        next_attempt_at_ms,
        last,
        outcome,
    ) = row;
    Delivery {
        id,
        webhook_id,
        alert_seq,
        state,
        attempts,
        created_at_ms,
        next_attempt_at_ms,
        last_attempt_at_ms: last,
        outcome,
    }
}

impl Store {
    /// Registers a webhook that hears of alerts after `queued_to`.
    pub async fn insert_webhook(&self, hook: &Webhook) -> Result<i64> {
        on_backend!(self, writer, |pool, sql| {
            Ok(sqlx::query_scalar(&sql(
                "INSERT INTO webhooks (url, kinds, secret, created_by, created_at, queued_to) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            ))
            .bind(&hook.url)
            .bind(hook.kinds.join(","))
            .bind(&hook.secret)
            .bind(&hook.created_by)
            .bind(hook.created_at_ms)
            .bind(hook.queued_to)
            .fetch_one(pool)
            .await?)
        })
    }

    /// The webhooks in service, by id.
    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<WebhookRow> = sqlx::query_as(&sql(&format!(
                "SELECT {WEBHOOK} FROM webhooks WHERE deleted_at IS NULL ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(webhook_from).collect())
        })
    }

    /// Takes a webhook out of service; its pending deliveries are cancelled. False: no such
    /// webhook in service.
    pub async fn delete_webhook(&self, id: i64, now_ms: i64) -> Result<bool> {
        on_backend!(self, writer, |pool, sql| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(&sql(
                "UPDATE webhooks SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
            ))
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&sql("UPDATE webhook_deliveries SET state = 'cancelled' \
                 WHERE webhook_id = $1 AND state = 'pending'"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Queues the alerts `seqs` for `webhook` (each once, whoever queues it) and moves its
    /// `queued_to` from `from` to `to`, in one transaction.
    pub async fn queue_deliveries(
        &self,
        webhook: i64,
        from: i64,
        to: i64,
        seqs: &[i64],
        now_ms: i64,
    ) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            let mut tx = pool.begin().await?;
            for seq in seqs {
                sqlx::query(&sql(
                    "INSERT INTO webhook_deliveries (webhook_id, alert_seq, created_at, \
                     next_attempt_at) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (webhook_id, alert_seq) DO NOTHING",
                ))
                .bind(webhook)
                .bind(seq)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&sql(
                "UPDATE webhooks SET queued_to = $1 WHERE id = $2 AND queued_to = $3",
            ))
            .bind(to)
            .bind(webhook)
            .bind(from)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Claims up to `limit` deliveries due at `now_ms` until `until_ms`: no other sender takes
    /// them meanwhile (if this one dies, they are due again then).
    pub async fn claim_deliveries(
        &self,
        now_ms: i64,
        until_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        on_backend!(self, writer, |pool, sql| {
            // The outer conditions are checked again on each row as it is updated, so two
            // senders racing for a row cannot both claim it.
            let rows: Vec<DeliveryRow> = sqlx::query_as(&sql(&format!(
                "UPDATE webhook_deliveries SET claimed_until = $1 \
                 WHERE state = 'pending' AND next_attempt_at <= $2 AND claimed_until < $2 \
                 AND id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
                 AND next_attempt_at <= $2 AND claimed_until < $2 ORDER BY id LIMIT $3) \
                 RETURNING {DELIVERY}"
            )))
            .bind(until_ms)
            .bind(now_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            let mut claimed: Vec<Delivery> = rows.into_iter().map(delivery_from).collect();
            claimed.sort_by_key(|d| d.id);
            Ok(claimed)
        })
    }

    /// Records an attempt: its outcome, the delivery's new state, and when to try again.
    pub async fn settle_delivery(&self, delivery: &Delivery) -> Result<()> {
        on_backend!(self, writer, |pool, sql| {
            sqlx::query(&sql(
                "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, \
                 last_attempt_at = $4, outcome = $5, claimed_until = 0 \
                 WHERE id = $6 AND state = 'pending'",
            ))
            .bind(&delivery.state)
            .bind(delivery.attempts)
            .bind(delivery.next_attempt_at_ms)
            .bind(delivery.last_attempt_at_ms)
            .bind(&delivery.outcome)
            .bind(delivery.id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A webhook's delivery log, newest first, below delivery `before`.
    pub async fn deliveries_of(
        &self,
        webhook: i64,
        before: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        on_backend!(self, reader, |pool, sql| {
            let rows: Vec<DeliveryRow> = sqlx::query_as(&sql(&format!(
                "SELECT {DELIVERY} FROM webhook_deliveries WHERE webhook_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            )))
            .bind(webhook)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(delivery_from).collect())
        })
    }
}
