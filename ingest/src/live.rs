//! # The live alert bus: from the tracker to every open SSE stream.
//!
//! Alerts are published the moment the tracker raises them (before the store flush). The bus keeps
//! the most recent ones in a ring under the same lock as the broadcast, so a subscriber takes "what
//! was published after N" and "everything published from now on" atomically: resuming with
//! `Last-Event-ID` has neither a gap nor a repeat. Older alerts come from the store.

use std::collections::VecDeque;
use std::sync::Mutex;
use tagwatch_model::Alert;
use tokio::sync::broadcast;

/// Alerts kept in memory for resuming streams; they are in the store long before they leave it.
pub const DEFAULT_RING: usize = 10_000;

/// What a new subscriber gets.
#[derive(Debug)]
pub struct Subscription {
    /// Alerts in the ring after the requested sequence number, oldest first.
    pub recent: Vec<Alert>,
    /// The oldest sequence number the ring still holds: anything older (and newer than the
    /// requested one) must come from the store.
    pub ring_starts_at: Option<i64>,
    /// The newest sequence number published so far in this process, if any.
    pub newest: Option<i64>,
    /// Every alert published after this subscription was taken.
    pub live: broadcast::Receiver<Alert>,
}

#[derive(Debug)]
struct Inner {
    ring: VecDeque<Alert>,
    /// `None` once closed: every live stream then ends, so the HTTP server can shut down.
    tx: Option<broadcast::Sender<Alert>>,
}

/// The publish/subscribe point for live alerts.
#[derive(Debug)]
pub struct AlertBus {
    capacity: usize,
    /// A std mutex: held only to push or copy, never across an `.await`.
    inner: Mutex<Inner>,
}

impl AlertBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1024)),
                tx: Some(tx),
            }),
        }
    }

    pub fn publish(&self, alert: Alert) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.ring.len() == self.capacity {
            inner.ring.pop_front();
        }
        inner.ring.push_back(alert.clone());
        if let Some(tx) = &inner.tx {
            // No receivers is fine: nobody is watching right now.
            let _ = tx.send(alert);
        }
    }

    /// Ends every live stream (at shutdown); later subscribers get history only.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).tx = None;
    }

    /// The alert with sequence number `seq`, if the ring still holds it (an alert is on the
    /// stream before the flush that stores it).
    pub fn recent(&self, seq: i64) -> Option<Alert> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.ring.iter().rev().find(|a| a.seq == seq).cloned()
    }

    /// Subscribes, returning the ring's alerts after `after` (all of them for `None`: none).
    pub fn subscribe(&self, after: Option<i64>) -> Subscription {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let recent = match after {
            Some(after) => inner
                .ring
                .iter()
                .filter(|a| a.seq > after)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Subscription {
            recent,
            ring_starts_at: inner.ring.front().map(|a| a.seq),
            newest: inner.ring.back().map(|a| a.seq),
            live: match &inner.tx {
                Some(tx) => tx.subscribe(),
                // A closed bus hands out a receiver whose sender is already gone.
                None => broadcast::channel(1).1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_model::{AlertId, AlertKind, GeoPoint, StationId, TagId};

    fn alert(seq: i64) -> Alert {
        Alert {
            seq,
            id: AlertId(format!("a{seq}")),
            kind: AlertKind::StolenSighting,
            tag: Some(TagId(1)),
            station: StationId(1),
            position: GeoPoint { lat: 0.0, lon: 0.0 },
            seen_at_ms: 0,
            raised_at_ms: 0,
            detail: Default::default(),
        }
    }

    #[test]
    fn subscribing_splits_history_and_live_without_overlap() {
        let bus = AlertBus::new(3);
        for seq in 1..=4 {
            bus.publish(alert(seq));
        }
        let mut sub = bus.subscribe(Some(2));
        let recent: Vec<_> = sub.recent.iter().map(|a| a.seq).collect();
        assert_eq!(recent, vec![3, 4]);
        assert_eq!(sub.ring_starts_at, Some(2), "seq 1 left the ring");
        bus.publish(alert(5));
        assert_eq!(sub.live.try_recv().map(|a| a.seq).ok(), Some(5));
        assert!(sub.live.try_recv().is_err());
        assert!(bus.subscribe(None).recent.is_empty());
        bus.close();
        assert!(matches!(
            sub.live.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
    }
}
