//! What the device listener counts, in Prometheus naming.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlarmLabel {
    pub alarm: &'static str,
}

/// Everything the GT06 listener counts.
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    pub connections: Counter,
    pub open: Gauge,
    pub messages: Family<KindLabel, Counter>,
    pub rejects: Family<ReasonLabel, Counter>,
    pub alarms: Family<AlarmLabel, Counter>,
    pub fixes: Counter,
    pub commands: Family<KindLabel, Counter>,
}

/// Every reason a message or connection is refused, so each series exists from the start.
pub const REASONS: [&str; 16] = [
    "start",
    "too_short",
    "too_long",
    "stop",
    "crc",
    "truncated",
    "imei",
    "time",
    "position",
    "unknown_device",
    "not_logged_in",
    "login_timeout",
    "idle",
    "too_many_connections",
    "alarm_without_fix",
    "busy_dropped",
];

impl DeviceMetrics {
    pub fn register(&self, registry: &mut Registry) {
        for reason in REASONS {
            let _ = self.rejects.get_or_create(&ReasonLabel { reason });
        }
        for kind in ["login", "report", "time", "unused"] {
            let _ = self.messages.get_or_create(&KindLabel { kind });
        }
        registry.register(
            "tagwatch_gt06_connections",
            "GT06 TCP connections accepted",
            self.connections.clone(),
        );
        registry.register(
            "tagwatch_gt06_open_connections",
            "GT06 TCP connections open now",
            self.open.clone(),
        );
        registry.register(
            "tagwatch_gt06_messages",
            "GT06 messages read, by kind",
            self.messages.clone(),
        );
        registry.register(
            "tagwatch_gt06_rejected",
            "GT06 messages and connections refused, by reason",
            self.rejects.clone(),
        );
        registry.register(
            "tagwatch_gt06_alarms",
            "Alarms GT06 devices raised, by alarm",
            self.alarms.clone(),
        );
        registry.register(
            "tagwatch_gt06_fixes",
            "Valid GPS fixes handed to the tracker",
            self.fixes.clone(),
        );
        registry.register(
            "tagwatch_gt06_commands",
            "Engine commands sent to and answered by devices",
            self.commands.clone(),
        );
    }

    pub fn reject(&self, reason: &'static str) {
        self.rejects.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn message(&self, kind: &'static str) {
        self.messages.get_or_create(&KindLabel { kind }).inc();
    }
}
