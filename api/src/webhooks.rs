//! # Webhooks: how a dispatch (CAD) system or an SMS gateway hears of alerts.
//!
//! An administrator registers a URL, the alert kinds it wants and a secret
//! (`POST /api/v1/webhooks`). The sender ([`run`]) follows the stored alerts (the store is the
//! record, the alert bus only wakes it early): each new alert of a wanted kind is queued for the
//! webhook in the store, then POSTed as JSON signed with the secret, retried with doubling
//! delays until the receiver answers 2xx or the delivery is [`Backoff::give_up_after`] old.
//! Queued deliveries survive restarts; each attempt is in the webhook's delivery log
//! (`GET /api/v1/webhooks/{id}/deliveries`).
//!
//! Signature: `X-TagWatch-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, with
//! `X-TagWatch-Timestamp` (Unix seconds) so that a receiver can refuse old replays, and
//! `X-TagWatch-Delivery` (the delivery's id: the same on every retry, to drop repeats).

use crate::answers::AlertView;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::input::{path_id, Body};
use crate::ApiState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use tagwatch_model::time::{now_ms, to_rfc3339};
use tagwatch_model::{AlertKind, Role};
use tagwatch_store::{Delivery, Webhook};
use tokio_util::sync::CancellationToken;

/// Longest URL accepted.
const MAX_URL_CHARS: usize = 2_048;
/// Most webhooks in service at once.
const MAX_WEBHOOKS: usize = 100;
/// Alerts read from the store per step while queueing.
const QUEUE_PAGE: u32 = 500;
/// Deliveries claimed per round, sent concurrently.
const SEND_BATCH: u32 = 32;
/// How long a claimed delivery is this sender's (longer than one attempt can take).
const CLAIM_FOR_MS: i64 = 60_000;
/// Longest wait for a receiver's answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the sender looks for due retries when no alert wakes it.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// When failed deliveries are tried again.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The wait after the first failed attempt; it doubles after each one, up to an hour.
    pub first_retry: Duration,
    /// A delivery still failing this long after its alert is given up (`expired`).
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first_retry: Duration::from_secs(10),
            give_up_after: Duration::from_secs(24 * 3_600),
        }
    }
}

impl Backoff {
    /// The wait after `attempts` failed attempts.
    fn after(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.first_retry
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(3_600))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    url: String,
    /// Alert kinds; empty or absent: every kind.
    #[serde(default)]
    kinds: Option<Vec<String>>,
    secret: String,
}

/// A webhook as shown (never its secret).
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    /// Empty: every kind.
    pub kinds: Vec<String>,
    pub created_by: String,
    pub created_at: String,
}

impl WebhookView {
    fn of(hook: &Webhook) -> Self {
        WebhookView {
            id: hook.id,
            url: hook.url.clone(),
            kinds: hook.kinds.clone(),
            created_by: hook.created_by.clone(),
            created_at: to_rfc3339(hook.created_at_ms),
        }
    }
}

/// `GET /webhooks`
#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One delivery in a webhook's log.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub alert_seq: i64,
    /// `pending` (will be tried again at `next_attempt_at`), `delivered`, `expired` (given up)
    /// or `cancelled` (the webhook was removed).
    pub state: String,
    pub attempts: i64,
    pub queued_at: String,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
    /// What the last attempt got: `HTTP 200`, `HTTP 503`, or why it did not connect.
    pub outcome: String,
}

/// `GET /webhooks/{id}/deliveries`
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeliveryLog {
    pub deliveries: Vec<DeliveryView>,
}

fn url(value: String) -> Result<String, ApiError> {
    let value = value.trim().to_owned();
    let bad = |why: &str| ApiError::field("url", format!("url {value:?} {why}"));
    if value.chars().count() > MAX_URL_CHARS {
        return Err(bad("is longer than 2,048 characters"));
    }
    let parsed = reqwest::Url::parse(&value).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("is not http or https"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("holds a user name or password: use the secret instead"));
    }
    Ok(value)
}

fn kinds(value: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let mut kinds = Vec::new();
    for kind in value.unwrap_or_default() {
        let kind = kind.trim().to_owned();
        if AlertKind::ALL.iter().all(|k| k.as_str() != kind) {
            return Err(ApiError::field(
                "kinds",
                format!("{kind:?} is not an alert kind"),
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

/// `POST /api/v1/webhooks` (admin): it hears of alerts raised from now on.
pub async fn create(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    body: Body<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let Json(new) = body?;
    let url = url(new.url)?;
    let kinds = kinds(new.kinds)?;
    let secret_chars = new.secret.chars().count();
    if !(16..=256).contains(&secret_chars) {
        return Err(ApiError::field(
            "secret",
            "secret must be 16 to 256 characters",
        ));
    }
    if state.store.webhooks().await?.len() >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict(format!(
            "{MAX_WEBHOOKS} webhooks are in service already: remove one first"
        )));
    }
    let (_, next_seq) = state.store.next_ids().await?;
    let mut hook = Webhook {
        id: 0,
        url,
        kinds,
        secret: new.secret,
        created_by: caller.username.clone(),
        created_at_ms: now_ms(),
        queued_to: next_seq - 1,
    };
    hook.id = state.store.insert_webhook(&hook).await?;
    tracing::info!(id = hook.id, url = %hook.url, by = %caller.username, "webhook registered");
    Ok((StatusCode::CREATED, Json(WebhookView::of(&hook))))
}

/// `GET /api/v1/webhooks` (admin)
pub async fn list(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require(&[Role::Admin])?;
    let hooks = state.store.webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: hooks.iter().map(WebhookView::of).collect(),
    }))
}

/// `DELETE /api/v1/webhooks/{id}` (admin): its queued deliveries are cancelled.
pub async fn delete(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = path_id("webhook", &id)?;
    if !state.store.delete_webhook(id, now_ms()).await? {
        return Err(ApiError::NotFound(format!("no webhook {id}")));
    }
    tracing::info!(id, by = %caller.username, "webhook removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/webhooks/{id}/deliveries?before=&limit=` (admin): newest first.
pub async fn deliveries(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryLog>, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = path_id("webhook", &id)?;
    let Query(query) = query.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::field("limit", "limit must be 1..=1000"));
    }
    if query.before.is_some_and(|b| b < 1) {
        return Err(ApiError::field("before", "before must be 1 or more"));
    }
    let found = state
        .store
        .deliveries_of(id, query.before.unwrap_or(i64::MAX), limit)
        .await?;
    if found.is_empty() && !state.store.webhooks().await?.iter().any(|h| h.id == id) {
        return Err(ApiError::NotFound(format!("no webhook {id}")));
    }
    Ok(Json(DeliveryLog {
        deliveries: found
            .iter()
            .map(|d| DeliveryView {
                id: d.id,
                alert_seq: d.alert_seq,
                state: d.state.clone(),
                attempts: d.attempts,
                queued_at: to_rfc3339(d.created_at_ms),
                last_attempt_at: d.last_attempt_at_ms.map(to_rfc3339),
                next_attempt_at: (d.state == "pending").then(|| to_rfc3339(d.next_attempt_at_ms)),
                outcome: d.outcome.clone(),
            })
            .collect(),
    }))
}

/// The signature of a delivery: hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The sender: queues new alerts for each webhook and delivers what is due, until `shutdown`.
/// Every API process runs one; they share the queue in the store.
pub async fn run(state: ApiState, backoff: Backoff, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("TagWatch-Webhook/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut wake = state.bus.subscribe(None).live;
    loop {
        // Nothing to do (and no write to the store) while no webhook is in service.
        match state.store.webhooks().await {
            Ok(hooks) if hooks.is_empty() => {}
            Ok(hooks) => {
                if let Err(error) = queue_new_alerts(&state, &hooks).await {
                    tracing::warn!(%error, "queueing webhook deliveries failed; retrying");
                }
                if let Err(error) = send_due(&state, &client, backoff, &hooks).await {
                    tracing::warn!(%error, "sending webhook deliveries failed; retrying");
                }
            }
            Err(error) => tracing::warn!(%error, "reading the webhooks failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            // An alert was raised: it may be stored by now (or at the next look).
            _ = wake.recv() => {}
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

/// Queues, for each webhook, the stored alerts after its `queued_to` of the kinds it wants.
async fn queue_new_alerts(
    state: &ApiState,
    hooks: &[Webhook],
) -> Result<(), tagwatch_store::Error> {
    for hook in hooks {
        let mut from = hook.queued_to;
        loop {
            let alerts = state.store.alerts_after(from, QUEUE_PAGE).await?;
            let Some(last) = alerts.last().map(|a| a.seq) else {
                break;
            };
            let wanted: Vec<i64> = alerts
                .iter()
                .filter(|a| {
                    hook.kinds.is_empty() || hook.kinds.iter().any(|k| k == a.kind.as_str())
                })
                .map(|a| a.seq)
                .collect();
            state
                .store
                .queue_deliveries(hook.id, from, last, &wanted, now_ms())
                .await?;
            from = last;
            if alerts.len() < QUEUE_PAGE as usize {
                break;
            }
        }
    }
    Ok(())
}

/// Claims the deliveries due now and makes one attempt at each, concurrently.
async fn send_due(
    state: &ApiState,
    client: &reqwest::Client,
    backoff: Backoff,
    hooks: &[Webhook],
) -> Result<(), tagwatch_store::Error> {
    loop {
        let now = now_ms();
        let due = state
            .store
            .claim_deliveries(now, now + CLAIM_FOR_MS, SEND_BATCH)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let attempts = due.into_iter().map(|delivery| {
            let hook = hooks.iter().find(|h| h.id == delivery.webhook_id).cloned();
            attempt(state, client, backoff, hook, delivery)
        });
        for settled in futures_util::future::join_all(attempts).await {
            state.store.settle_delivery(&settled).await?;
        }
    }
}

/// One attempt at `delivery`; the delivery as it then stands.
async fn attempt(
    state: &ApiState,
    client: &reqwest::Client,
    backoff: Backoff,
    hook: Option<Webhook>,
    mut delivery: Delivery,
) -> Delivery {
    let now = now_ms();
    let Some(hook) = hook else {
        delivery.state = "cancelled".into();
        return delivery;
    };
    delivery.attempts += 1;
    delivery.last_attempt_at_ms = Some(now);
    delivery.outcome = match send(state, client, &hook, &delivery).await {
        Ok(status) if status.is_success() => {
            delivery.state = "delivered".into();
            format!("HTTP {}", status.as_u16())
        }
        Ok(status) => format!("HTTP {}", status.as_u16()),
        Err(why) => why,
    };
    if delivery.state == "pending" {
        let age = Duration::from_millis(u64::try_from(now - delivery.created_at_ms).unwrap_or(0));
        if age >= backoff.give_up_after {
            delivery.state = "expired".into();
            tracing::warn!(webhook = hook.id, delivery = delivery.id, outcome = %delivery.outcome,
                "webhook delivery given up");
        } else {
            let wait = backoff.after(delivery.attempts);
            delivery.next_attempt_at_ms =
                now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        }
    }
    delivery
}

/// POSTs the delivery's alert; the receiver's status, or why there was none.
async fn send(
    state: &ApiState,
    client: &reqwest::Client,
    hook: &Webhook,
    delivery: &Delivery,
) -> Result<reqwest::StatusCode, String> {
    let alert = state
        .store
        .alert(delivery.alert_seq)
        .await
        .map_err(|e| format!("alert unreadable: {e}"))?
        .ok_or_else(|| format!("alert {} is not stored", delivery.alert_seq))?;
    let mut view = [AlertView::of(&alert, &state.devices)];
    if let Err(error) = crate::identity::label_alerts(state, &mut view).await {
        tracing::warn!(%error, "webhook delivery without its vehicle's label");
    }
    let [view] = view;
    let body = serde_json::to_vec(&serde_json::json!({
        "event": "alert",
        "delivery_id": delivery.id,
        "webhook_id": hook.id,
        "attempt": delivery.attempts,
        "alert": view,
    }))
    .map_err(|e| e.to_string())?;
    let timestamp = now_ms() / 1_000;
    let response = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-tagwatch-delivery", delivery.id.to_string())
        .header("x-tagwatch-timestamp", timestamp.to_string())
        .header(
            "x-tagwatch-signature",
            format!("v1={}", signature(&hook.secret, timestamp, &body)),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            // Without the URL: it may hold a token of the receiver's.
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            format!("{kind}: {}", e.without_url())
        })?;
    Ok(response.status())
}
