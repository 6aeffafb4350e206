//! The store `cluster`: the same city against TagWatch's cluster roles on this machine instead
//! of `serve` — a `nats-server` of its own with JetStream, one gateway, `--shards` tracker
//! shards and one API node, all on the two cores with Postgres — so the ratio to the Postgres
//! run says what the bus costs. The roles run on the server's runtime (as `serve` does), the
//! NATS server as its own process (its CPU is counted with the server's).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tagwatch::api_role::{ApiOptions, RunningApi};
use tagwatch::config::{ApiSection, StationsSection};
use tagwatch::gateway_role::{GatewayOptions, RunningGateway};
use tagwatch::shard_role::{RunningShard, ShardOptions};
use tagwatch::{Config, Secret};
use tagwatch_cluster::local::NatsServer;
use tagwatch_cluster::BusConfig;

use crate::TOKEN;

/// Partitions of the bench's cluster: four per shard at most, so shards share the work evenly.
const PARTITIONS: u16 = 16;

/// The roles and the NATS server of one run.
pub struct ClusterUnderTest {
    _nats: NatsServer,
    gateway: RunningGateway,
    shards: Vec<RunningShard>,
    api: RunningApi,
}

impl ClusterUnderTest {
    /// Starts NATS, then the gateway, the shards and the API node on `database` (Postgres,
    /// provisioned), with `config`'s tracker settings; returns once every partition is held.
    pub async fn start(config: &Config, shards: usize) -> anyhow::Result<Self> {
        let nats = NatsServer::start()
            .await?
            .context("the cluster runs need nats-server (apt-get install nats-server)")?;
        let database = config.store.database.clone();
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let gateway = RunningGateway::start(GatewayOptions {
            nats: nats.url(),
            database: database.clone(),
            udp: loopback(0),
            tcp: loopback(0),
            stations: StationsSection::default(),
            clock_skew_limit: config.tracker.clock_skew_limit,
            bus: BusConfig::default(),
            partitions: Some(PARTITIONS),
            refresh: Duration::from_secs(5),
            http: Some(loopback(0)),
            gt06: None,
        })
        .await?;
        let mut running = Vec::new();
        for i in 0..shards {
            running.push(
                RunningShard::start(ShardOptions {
                    nats: nats.url(),
                    database: database.clone(),
                    name: format!("bench-{i}"),
                    tracker: config.tracker.tracker_config(),
                    bus: BusConfig::default(),
                    lease_ttl: Duration::from_secs(6),
                    flush_interval: Duration::from_millis(100),
                    checkpoint_interval: Duration::from_secs(30),
                    http: Some(loopback(0)),
                })
                .await?,
            );
        }
        let api = RunningApi::start(ApiOptions {
            nats: nats.url(),
            database,
            http: loopback(0),
            bus: BusConfig::default(),
            api: ApiSection {
                admin_token: Some(Secret(TOKEN.into())),
                ..config.api.clone()
            },
            retention_days: 30,
            ask_deadline: Duration::from_secs(2),
        })
        .await?;
        let started = std::time::Instant::now();
        while running
            .iter()
            .map(|s| s.metrics.partitions_held.get())
            .sum::<i64>()
            < i64::from(PARTITIONS)
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "the shards did not take every partition within a minute"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            _nats: nats,
            gateway,
            shards: running,
            api,
        })
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.gateway.udp
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.gateway.tcp
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.api.http
    }

    /// Where the roles' metrics are: the gateway's and each shard's.
    pub fn metrics_urls(&self) -> Vec<String> {
        std::iter::once(self.gateway.http)
            .chain(self.shards.iter().map(|s| s.http))
            .flatten()
            .map(|addr| format!("http://{addr}"))
            .collect()
    }

    pub async fn stop(self) {
        self.api.stop().await;
        for shard in self.shards {
            shard.stop().await;
        }
        self.gateway.stop().await;
    }
}
