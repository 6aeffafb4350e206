//! Helpers for the cluster's tests: roles as processes of their own (this test binary started
//! again running an ignored child test), the frames stream read back in arrival order, the
//! same frames replayed to a `serve`, and waiting for the shards to catch up.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use tagwatch::api_role::{ApiOptions, RunningApi};
use tagwatch::config::{ApiSection, StationsSection};
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch::shard_role::{RunningShard, ShardOptions};
use tagwatch::Secret;
use tagwatch_cluster::alerts::ALERTS_STREAM;
use tagwatch_cluster::bus::{partition_subject, FRAMES_STREAM};
use tagwatch_cluster::BusConfig;
use tagwatch_gateway::wire::{AckStatus, Frame};
use tagwatch_model::{FrameKey, SessionId, StationId, StationKey};
use tagwatch_store::Store;
use tagwatch_tracker::TrackerConfig;
use tokio::process::Child;

use super::{free_port, spawn_server_process, TestStation, SIMULATED_CLOCKS, TOKEN};

/// The environment variable a role's child test reads its spec from.
pub const ROLE_ENV: &str = "TAGWATCH_ROLE_CHILD";

/// How long a shard's lease lives in these tests: a killed shard's partitions wait this long.
pub const LEASE_TTL: Duration = Duration::from_secs(3);

/// The tracker as the simulated city needs it (its clocks run ahead of the server's).
pub fn tracker_config() -> TrackerConfig {
    TrackerConfig {
        visit_gap_ms: 30_000,
        clock_skew_limit_ms: i64::try_from(SIMULATED_CLOCKS.as_millis()).expect("fits"),
        ..TrackerConfig::default()
    }
}

fn bus(replicas: &str) -> BusConfig {
    BusConfig {
        replicas: replicas.parse().expect("replicas"),
        publish_timeout: Duration::from_secs(1),
        ..BusConfig::default()
    }
}

/// Runs the role `spec` names (`role|nats|database|replicas|...`) until killed: what a child
/// test calls.
pub async fn run_role_child() {
    let Ok(spec) = std::env::var(ROLE_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    match parts.as_slice() {
        ["gateway", nats, database, replicas, udp, tcp, http] => {
            let _gateway = RunningGateway::start(GatewayOptions {
                nats: (*nats).to_owned(),
                database: (*database).to_owned(),
                udp: udp.parse().expect("udp"),
                tcp: tcp.parse().expect("tcp"),
                stations: StationsSection::default(),
                clock_skew_limit: SIMULATED_CLOCKS,
                bus: bus(replicas),
                partitions: None,
                refresh: Duration::from_secs(5),
                http: Some(http.parse().expect("http")),
                gt06: None,
            })
            .await
            .expect("the gateway starts");
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        ["shard", nats, database, replicas, name, http] => {
            let _shard = RunningShard::start(ShardOptions {
                nats: (*nats).to_owned(),
                database: (*database).to_owned(),
                name: (*name).to_owned(),
                tracker: tracker_config(),
                bus: bus(replicas),
                lease_ttl: LEASE_TTL,
                flush_interval: Duration::from_millis(50),
                checkpoint_interval: Duration::from_secs(2),
                http: Some(http.parse().expect("http")),
            })
            .await
            .expect("the shard starts");
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        ["api", nats, database, _replicas, http] => {
            let _api = RunningApi::start(ApiOptions {
                nats: (*nats).to_owned(),
                database: (*database).to_owned(),
                http: http.parse().expect("http"),
                bus: BusConfig::default(),
                api: ApiSection {
                    admin_token: Some(Secret(TOKEN.into())),
                    ..ApiSection::default()
                },
                retention_days: 30,
                ask_deadline: Duration::from_secs(2),
            })
            .await
            .expect("the api node starts");
            tokio::time::sleep(Duration::from_secs(300)).await;
        }
        _ => panic!("bad {ROLE_ENV}: {spec}"),
    }
}

/// A role running as a process of its own, which the test can SIGKILL and start again.
pub struct RoleProcess {
    child_test: &'static str,
    spec: String,
    /// Its HTTP address (`/healthz`, `/metrics`; the API for an API node).
    pub http: String,
    child: Option<Child>,
}

impl RoleProcess {
    async fn start(child_test: &'static str, spec: String, http: String) -> Self {
        let child = spawn_server_process(child_test, ROLE_ENV, &spec, &http).await;
        Self {
            child_test,
            spec,
            http,
            child: Some(child),
        }
    }

    /// A gateway listening for stations on `udp` and `tcp` (fixed, so it comes back on them).
    pub async fn gateway(
        child_test: &'static str,
        nats: &str,
        database: &str,
        replicas: usize,
        udp: SocketAddr,
        tcp: SocketAddr,
    ) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let spec = format!("gateway|{nats}|{database}|{replicas}|{udp}|{tcp}|{http}");
        Self::start(child_test, spec, http).await
    }

    pub async fn shard(
        child_test: &'static str,
        nats: &str,
        database: &str,
        replicas: usize,
        name: &str,
    ) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let spec = format!("shard|{nats}|{database}|{replicas}|{name}|{http}");
        Self::start(child_test, spec, http).await
    }

    pub async fn api(child_test: &'static str, nats: &str, database: &str) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let spec = format!("api|{nats}|{database}|1|{http}");
        Self::start(child_test, spec, http).await
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("SIGKILL");
        }
    }

    /// Starts it again with the same spec (after a kill).
    pub async fn restart(&mut self) {
        self.kill().await;
        self.child =
            Some(spawn_server_process(self.child_test, ROLE_ENV, &self.spec, &self.http).await);
    }

    /// A metric's value on its `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        super::metric_at(&format!("http://{}", self.http), name).await
    }
}

/// Waits until every partition has checkpointed everything the frames stream holds for it (its
/// visits are in the store then; alerts and the applied sequence are committed sooner, at every
/// flush); false after `wait`.
pub async fn checkpointed_everything(
    nats: &str,
    store: &Store,
    partitions: u16,
    wait: Duration,
) -> bool {
    let client = async_nats::connect(tagwatch_cluster::bus::servers(nats))
        .await
        .expect("connect");
    let stream = jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await
        .expect("frames stream");
    let deadline = Instant::now() + wait;
    'wait: while Instant::now() < deadline {
        for partition in 0..partitions {
            let last = match stream
                .get_last_raw_message_by_subject(&partition_subject(partition))
                .await
            {
                Ok(message) => message.sequence,
                Err(_) => continue,
            };
            let checkpointed = store
                .partition_state(partition)
                .await
                .expect("state")
                .checkpoint_seq;
            if checkpointed < last {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'wait;
            }
        }
        return true;
    }
    false
}

/// The frames in the order the gateways received them (the order their parts reached
/// JetStream): which frame raised a sighting's alert first depends on it, so `serve` is given the
/// same order. Frames without parts (no records) come last.
pub async fn arrival_order(nats: &str, frames: &[Frame]) -> Vec<Frame> {
    let client = async_nats::connect(tagwatch_cluster::bus::servers(nats))
        .await
        .expect("connect");
    let stream = jetstream::new(client)
        .get_stream(FRAMES_STREAM)
        .await
        .expect("frames stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut by_key: HashMap<FrameKey, Frame> =
        frames.iter().map(|f| (f.key(), f.clone())).collect();
    let mut order = Vec::with_capacity(frames.len());
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        let frame = tagwatch_gateway::wire::decode_verified(&message.payload).expect("a part");
        if let Some(frame) = by_key.remove(&frame.key()) {
            order.push(frame);
        }
    }
    let mut rest: Vec<Frame> = by_key.into_values().collect();
    rest.sort_by_key(Frame::key);
    order.extend(rest);
    order
}

/// Sends `frames` to a `serve` over UDP one at a time, in the given order, each once it has
/// acknowledged the one before: so `serve` applies them in exactly this order (with frames
/// queued, its lanes would put a station's older frames behind the live ones).
pub async fn replay(frames: &[Frame], keys: &HashMap<StationId, StationKey>, target: SocketAddr) {
    let mut senders: HashMap<(StationId, SessionId), TestStation> = HashMap::new();
    for frame in frames {
        let (station, session) = (frame.station, frame.session);
        let sender = match senders.entry((station, session)) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                socket.connect(target).await.expect("connect");
                entry.insert(TestStation {
                    id: station,
                    session,
                    key: keys[&station].clone(),
                    socket,
                })
            }
        };
        'resend: for _ in 0..100 {
            sender.send(frame).await;
            while let Some((seq, status)) = sender.ack_within(Duration::from_millis(300)).await {
                assert_ne!(status, AckStatus::Rejected, "{:?}", frame.key());
                if seq == frame.seq {
                    if status == AckStatus::Busy {
                        continue 'resend;
                    }
                    break 'resend;
                }
            }
        }
    }
}

/// Every alert on the alerts stream: (sequence, alert id).
pub async fn streamed_alerts(nats: &str) -> Vec<(u64, String)> {
    let client = async_nats::connect(tagwatch_cluster::bus::servers(nats))
        .await
        .expect("connect");
    let stream = jetstream::new(client)
        .get_stream(ALERTS_STREAM)
        .await
        .expect("alerts stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut alerts = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        let alert =
            tagwatch_cluster::alerts::decode(message.sequence, &message.payload).expect("decodes");
        alerts.push((message.sequence, alert.id.0));
    }
    alerts
}
