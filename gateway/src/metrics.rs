//! Gateway counters, in Prometheus naming.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Mutex;

/// Distinct source addresses tracked for forged-frame counts; beyond it they count as "other",
/// so a forger cannot grow the metrics without bound.
const MAX_SOURCES: usize = 1024;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StationLabel {
    pub station: u32,
}

/// Everything the gateway counts.
#[derive(Debug, Default)]
pub struct GatewayMetrics {
    pub frames: Family<KindLabel, Counter>,
    pub detections: Counter,
    pub rejects: Family<ReasonLabel, Counter>,
    pub acks: Family<StatusLabel, Counter>,
    pub unauthenticated_by_source: Family<SourceLabel, Counter>,
    pub bad_mac_by_station: Family<StationLabel, Counter>,
    pub clock_skew_frames: Counter,
    pub tcp_connections: Counter,
    pub tcp_closed_for_garbage: Counter,
    seen_sources: Mutex<HashSet<IpAddr>>,
}

impl GatewayMetrics {
    pub fn register(&self, registry: &mut Registry) {
        // Known series start at zero, so dashboards and alerts see them before the first event.
        for kind in ["detections", "status"] {
            let _ = self.frames.get_or_create(&KindLabel { kind });
        }
        for status in ["accepted", "duplicate", "rejected", "busy", "dropped"] {
            let _ = self.acks.get_or_create(&StatusLabel { status });
        }
        for reason in ["unknown_station", "mac", "busy"] {
            let _ = self.rejects.get_or_create(&ReasonLabel { reason });
        }
        registry.register(
            "tagwatch_frames_received",
            "Authenticated frames received, by kind",
            self.frames.clone(),
        );
        registry.register(
            "tagwatch_detections_received",
            "Detection records in authenticated frames",
            self.detections.clone(),
        );
        registry.register(
            "tagwatch_frames_rejected",
            "Frames refused, by reason (unknown_station and mac get no answer)",
            self.rejects.clone(),
        );
        registry.register(
            "tagwatch_acks_sent",
            "ACKs sent, by status",
            self.acks.clone(),
        );
        registry.register(
            "tagwatch_unauthenticated_frames_by_source",
            "Frames with an unknown station or a bad MAC, by source address",
            self.unauthenticated_by_source.clone(),
        );
        registry.register(
            "tagwatch_bad_mac_frames_by_station",
            "Frames naming a known station whose MAC does not verify",
            self.bad_mac_by_station.clone(),
        );
        registry.register(
            "tagwatch_clock_skew_frames",
            "Frames whose station clock is far off the gateway's",
            self.clock_skew_frames.clone(),
        );
        registry.register(
            "tagwatch_tcp_connections",
            "TCP connections accepted",
            self.tcp_connections.clone(),
        );
        registry.register(
            "tagwatch_tcp_closed_for_garbage",
            "TCP connections closed because the stream could not be parsed",
            self.tcp_closed_for_garbage.clone(),
        );
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejects.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn ack(&self, status: &'static str) {
        self.acks.get_or_create(&StatusLabel { status }).inc();
    }

    pub fn unauthenticated_from(&self, source: IpAddr) {
        let mut seen = self.seen_sources.lock().unwrap_or_else(|e| e.into_inner());
        let label = if seen.contains(&source) || seen.len() < MAX_SOURCES {
            seen.insert(source);
            source.to_string()
        } else {
            "other".to_owned()
        };
        drop(seen);
        self.unauthenticated_by_source
            .get_or_create(&SourceLabel { source: label })
            .inc();
    }
}
