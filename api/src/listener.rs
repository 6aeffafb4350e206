//! # The HTTP listener: what stands between the network and the router.
//!
//! `axum::serve` reads request headers for as long as a client cares to send them and accepts
//! every connection it is offered, so a few thousand half-sent requests (a slowloris) hold the
//! server's descriptors for as long as the attacker likes. This listener bounds both: at most
//! [`HttpLimits::max_connections`] connections are served at once (further ones wait in the
//! kernel's backlog until one closes), and a connection that has not sent a request's whole
//! header within [`HttpLimits::header_timeout`] (also between keep-alive requests) is closed.
//! Each request carries the caller's address ([`axum::extract::ConnectInfo`]) for the limits
//! kept per source, and a [`BodyDeadline`]: its body must have arrived as long again after its
//! header did, or it is answered 408 (a slowloris that sends its body a byte at a time).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Bounds of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request's header.
    pub header_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 1_024,
            header_timeout: Duration::from_secs(5),
        }
    }
}

/// How long shutdown waits for requests under way (live streams are ended before it).
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown`, then lets requests under way finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        // A slot first: past the bound, connections wait in the kernel's backlog.
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, most likely: wait for some to be released.
                    tracing::warn!(%error, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let body_time = limits.header_timeout;
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
                    .extensions_mut()
                    .insert(BodyDeadline(tokio::time::Instant::now() + body_time));
                request
            });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "http connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http requests still under way at shutdown were cut off");
    }
}

/// The caller's address, for handlers that limit per source (absent only in tests that call
/// the router directly: those all count as one source).
/// When a request's body must have arrived by (see the module's doc).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

pub fn source(connect_info: Option<&ConnectInfo<SocketAddr>>) -> std::net::IpAddr {
    connect_info.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}
