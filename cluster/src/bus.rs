//! # The bus: NATS JetStream, the cluster's replicated log
//!
//! Gateways publish frame parts (and STATUS frames, whole, to their station's partition) to
//! `tw.part.<partition>`, captured by one stream, [`FRAMES_STREAM`], replicated over the NATS
//! cluster: a part is durable once JetStream acknowledges it, and the gateway acknowledges the
//! station only then. The partition count is fixed when the cluster is created: the first
//! process to connect writes it to the `tw_cluster` key-value bucket, and every later one reads
//! it from there (a different count asked for is refused, since moving a vehicle to another
//! partition would split its history between shards).

use crate::alerts::{ALERTS_STREAM, ALERTS_SUBJECT};
use crate::commands::{COMMANDS_STREAM, COMMANDS_SUBJECT};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream, Context};

/// The stream of frame parts and STATUS frames.
pub const FRAMES_STREAM: &str = "TW_FRAMES";
/// The key-value bucket with what the cluster was created with.
pub const CLUSTER_BUCKET: &str = "tw_cluster";
const PARTITIONS_KEY: &str = "partitions";
/// Most partitions a cluster may have (each is a durable consumer and a lease).
pub const MAX_PARTITIONS: u16 = 1_024;

/// The subject a partition's parts are published on.
pub fn partition_subject(partition: u16) -> String {
    format!("tw.part.{partition}")
}

/// How the bus is set up when the cluster is created.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Partitions, if this process creates the cluster.
    pub partitions: u16,
    /// Copies of the stream kept by the NATS cluster (3 on a three-node cluster).
    pub replicas: usize,
    /// How long JetStream remembers a message id: a resend within it is a duplicate at once.
    pub duplicate_window: Duration,
    /// How long parts stay in the stream: the longest a shard may be away and catch up.
    pub max_age: Duration,
    /// How long a publish may wait for JetStream's acknowledgement before the station is told
    /// BUSY.
    pub publish_timeout: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            partitions: 64,
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(24 * 3600),
            publish_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the bus could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("JetStream refused the {what}: {detail}")]
    JetStream { what: &'static str, detail: String },
    #[error("the cluster was created with {existing} partitions, not {asked}: the partition count cannot change")]
    Partitions { existing: u16, asked: u16 },
    #[error("partitions must be 1..={MAX_PARTITIONS}, not {0}")]
    PartitionCount(u16),
}

fn refused(what: &'static str) -> impl FnOnce(String) -> BusError {
    move |detail| BusError::JetStream { what, detail }
}

/// A connection to the cluster's bus.
#[derive(Debug, Clone)]
pub struct Bus {
    pub jetstream: Context,
    /// The cluster's partition count (as created, whatever this process asked for).
    pub partitions: u16,
    pub config: BusConfig,
}

impl Bus {
    /// Connects, and creates the stream and the cluster's record if this is the first process.
    /// `partitions_asked` is `None` to take whatever the cluster has.
    pub async fn connect(
        url: &str,
        config: BusConfig,
        partitions_asked: Option<u16>,
    ) -> Result<Self, BusError> {
        let wanted = partitions_asked.unwrap_or(config.partitions);
        if !(1..=MAX_PARTITIONS).contains(&wanted) {
            return Err(BusError::PartitionCount(wanted));
        }
        let client =
            async_nats::connect(servers(url))
                .await
                .map_err(|source| BusError::Connect {
                    url: without_credentials(url),
                    source,
                })?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(config.publish_timeout)
            // A gateway with too many publishes awaiting JetStream tells stations BUSY rather
            // than queue them.
            .backpressure_on_inflight(false)
            .max_ack_inflight(16_384)
            .build(client);
        jetstream
            .get_or_create_stream(stream::Config {
                name: FRAMES_STREAM.to_owned(),
                subjects: vec!["tw.part.*".to_owned()],
                num_replicas: config.replicas,
                duplicate_window: config.duplicate_window,
                max_age: config.max_age,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())
            .map_err(refused("frames stream"))?;
        let alerts_window = crate::alerts::ALERT_DUPLICATE_WINDOW.min(config.max_age);
        one_subject_stream(
            &jetstream,
            &config,
            ALERTS_STREAM,
            ALERTS_SUBJECT,
            alerts_window,
        )
        .await
        .map_err(refused("alerts stream"))?;
        one_subject_stream(
            &jetstream,
            &config,
            COMMANDS_STREAM,
            COMMANDS_SUBJECT,
            config.duplicate_window,
        )
        .await
        .map_err(refused("commands stream"))?;
        let bucket = key_value(&jetstream, CLUSTER_BUCKET, config.replicas, Duration::ZERO)
            .await
            .map_err(refused("cluster bucket"))?;
        let partitions = match bucket
            .create(PARTITIONS_KEY, wanted.to_string().into())
            .await
        {
            Ok(_) => wanted,
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                let stored = bucket
                    .get(PARTITIONS_KEY)
                    .await
                    .map_err(|e| e.to_string())
                    .map_err(refused("cluster record"))?
                    .and_then(|b| std::str::from_utf8(&b).ok()?.parse::<u16>().ok())
                    .ok_or_else(|| BusError::JetStream {
                        what: "cluster record",
                        detail: "no readable partition count".into(),
                    })?;
                if partitions_asked.is_some_and(|asked| asked != stored) {
                    return Err(BusError::Partitions {
                        existing: stored,
                        asked: wanted,
                    });
                }
                stored
            }
            Err(error) => return Err(refused("cluster record")(error.to_string())),
        };
        Ok(Self {
            jetstream,
            partitions,
            config,
        })
    }
}

/// A stream of one subject (alerts, commands), created if absent, kept as the frames are.
async fn one_subject_stream(
    jetstream: &Context,
    config: &BusConfig,
    name: &str,
    subject: &str,
    duplicate_window: Duration,
) -> Result<(), String> {
    jetstream
        .get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects: vec![subject.to_owned()],
            num_replicas: config.replicas.max(1),
            duplicate_window,
            max_age: config.max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The servers of `url`, one or several comma-separated (the client parses one URL only): the
/// client connects to any of them and fails over to the others.
pub fn servers(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `url` (one or several, comma-separated) with any user and password replaced, for messages:
/// `nats://user:secret@host:4222` becomes `nats://***@host:4222`.
pub fn without_credentials(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &one[..scheme + 3], &one[at..])
            }
            (None, Some(at)) => format!("***{}", &one[at..]),
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Bus {
    /// Whether the connection to NATS is up (publishes can be stored).
    pub fn is_connected(&self) -> bool {
        self.jetstream.client().connection_state() == async_nats::connection::State::Connected
    }
}

/// A key-value bucket, created if absent. It is created as the stream a key-value bucket is
/// (`KV_<bucket>` on `$KV.<bucket>.>`, one value per key, rollups allowed, deletes denied,
/// direct gets) rather than through the client's `create_key_value`, which first reads the
/// account's limits in a shape Debian's nats-server 2.9 does not answer in; reading and writing
/// the bucket go through the client's key-value API.
pub async fn key_value(
    jetstream: &Context,
    bucket: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, String> {
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    jetstream
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    jetstream
        .get_key_value(bucket)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_servers_are_comma_separated() {
        assert_eq!(
            servers("nats://10.0.0.1:4222, nats://10.0.0.2:4222,"),
            ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]
        );
        assert_eq!(servers("127.0.0.1:4222"), ["127.0.0.1:4222"]);
    }

    #[test]
    fn a_nats_url_in_a_message_carries_no_credentials() {
        assert_eq!(
            without_credentials("nats://svc:s3cret@10.0.0.1:4222,nats://10.0.0.2:4222"),
            "nats://***@10.0.0.1:4222,nats://10.0.0.2:4222"
        );
        assert_eq!(
            without_credentials("token@127.0.0.1:4222"),
            "***@127.0.0.1:4222"
        );
        assert_eq!(without_credentials("127.0.0.1:4222"), "127.0.0.1:4222");
    }
}
