//! # Configuration: one struct tree, loaded once from defaults, a TOML file, `TAGWATCH_*`
//! environment variables and command-line flags (each overriding the one before), validated, and
//! passed down. Secrets print as `<redacted>`.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A secret string (the admin token). Its `Debug` never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything `tagwatch serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` (created if missing), `sqlite::memory:`, or `postgres://USER@HOST/DB`.
    pub database: String,
    /// UDP address stations send frames to.
    pub udp: SocketAddr,
    /// TCP address stations stream frames to.
    pub tcp: SocketAddr,
    /// HTTP address of the API.
    pub http: SocketAddr,
    /// Bearer token of the administrator; generated at start when absent.
    pub admin_token: Option<Secret>,
    /// Longest a frame waits for its store flush.
    pub flush_interval_ms: u64,
    /// How often a checkpoint writes the visits changed since the last one, each once, and drops
    /// the frame journal that covered them until then; 0: every flush writes visits (no journal).
    /// A minimum: the next checkpoint also waits twice as long as the last one took to commit.
    /// Unset: 30 s on Postgres (checkpoints commit on a connection of their own, alongside the
    /// flushes), 0 on SQLite (one writer: a checkpoint would hold the flushes and ACKs up).
    pub checkpoint_interval_ms: Option<u64>,
    /// Frames per flush before flushing early. A full batch waits for the store (a frame's stolen
    /// and armed alerts are raised as it is taken in, before it waits).
    pub max_batch_frames: usize,
    /// Frames the gateway hands over between two takes of the ingest (every few ms); beyond it
    /// stations are told BUSY. The ingest's own queue is bounded by time: `admission_bound_ms`.
    pub queue_frames: usize,
    /// Longest a frame may be expected to wait before it is applied, at the rate the ingest is
    /// measured to drain its queue; beyond it stations are told BUSY at once (a refused frame's
    /// stolen and armed alerts are raised all the same), ms.
    pub admission_bound_ms: u64,
    /// Largest frame body accepted, bytes.
    pub max_frame_body: usize,
    /// Detections of a tag at one station closer than this are one visit, seconds.
    pub visit_gap_s: u64,
    /// Station clocks further off than this are flagged, seconds.
    pub clock_skew_limit_s: u64,
    /// How long visits stay in the tracker's memory after their last detection, seconds; later
    /// data for them is merged with the stored visit.
    pub hot_window_s: u64,
    /// How far back the tracker's in-memory trajectory index reaches, seconds; questions about
    /// older times are answered from the store.
    pub index_window_s: u64,
    /// A station with no frame (detections or STATUS) for this long raises `station_silent`,
    /// seconds.
    pub station_silent_s: u64,
    /// Visits older than this are dropped (except those of vehicles with an open theft case).
    pub retention_days: u32,
    /// Map tile URL template (`{z}/{x}/{y}`) for the web map; none: a plain background.
    pub tile_url: Option<String>,
    /// API calls per second one token may sustain, and the burst it may make.
    pub token_calls_per_s: u32,
    pub token_call_burst: u32,
    /// Requests without a valid token (logins included) one source address may make a minute,
    /// and its burst.
    pub unauthenticated_per_min: u32,
    pub unauthenticated_burst: u32,
    /// Station TCP connections open at once (lowered at start to fit the open-file limit).
    pub tcp_connections: usize,
    /// Station TCP connections from one source address that have not yet sent a frame with a
    /// valid MAC (authenticated stations do not count, so stations behind one NAT are all served).
    pub tcp_connections_per_source: usize,
    /// A station TCP connection that has sent no frame with a valid MAC this long after opening
    /// is closed, seconds.
    pub tcp_auth_timeout_s: u64,
    /// HTTP connections served at once (lowered at start to fit the open-file limit).
    pub http_connections: usize,
    /// Longest an HTTP client may take to send a request's header, seconds.
    pub http_header_timeout_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database: "sqlite://tagwatch.sqlite".into(),
            udp: SocketAddr::from(([0, 0, 0, 0], 7700)),
            tcp: SocketAddr::from(([0, 0, 0, 0], 7700)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            flush_interval_ms: 20,
            checkpoint_interval_ms: None,
            max_batch_frames: 4096,
            queue_frames: 16_384,
            admission_bound_ms: 1_000,
            max_frame_body: 32 * 1024,
            visit_gap_s: 30,
            clock_skew_limit_s: 120,
            hot_window_s: 3_600,
            index_window_s: 86_400,
            station_silent_s: 90,
            retention_days: 90,
            tile_url: None,
            token_calls_per_s: tagwatch_api::limits::CALLS_PER_SECOND,
            token_call_burst: tagwatch_api::limits::CALL_BURST,
            unauthenticated_per_min: tagwatch_api::limits::UNAUTHENTICATED_PER_MINUTE,
            unauthenticated_burst: tagwatch_api::limits::UNAUTHENTICATED_BURST,
            tcp_connections: 4_096,
            tcp_connections_per_source: 64,
            tcp_auth_timeout_s: 5,
            http_connections: 1_024,
            http_header_timeout_s: 5,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }

    /// Checks every value a typo could make unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|p| self.database.starts_with(p)) {
            return invalid(
                "database",
                "must be sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB",
            );
        }
        if self.retention_days == 0 {
            return invalid("retention_days", "must be at least 1");
        }
        if !(1..=10_000).contains(&self.flush_interval_ms) {
            return invalid("flush_interval_ms", "must be 1..=10000");
        }
        if self.checkpoint_interval_ms.is_some_and(|ms| ms > 300_000) {
            return invalid(
                "checkpoint_interval_ms",
                "must be 0..=300000 (five minutes)",
            );
        }
        if self.max_batch_frames == 0 || self.queue_frames == 0 {
            return invalid("max_batch_frames", "batch and queue sizes must be positive");
        }
        if !(10..=60_000).contains(&self.admission_bound_ms) {
            return invalid("admission_bound_ms", "must be 10..=60000");
        }
        if !(64..=tagwatch_gateway::wire::MAX_BODY_LEN).contains(&self.max_frame_body) {
            return invalid("max_frame_body", "must be 64..=65535");
        }
        if self.visit_gap_s == 0 {
            return invalid("visit_gap_s", "must be positive");
        }
        if self.unauthenticated_per_min == 0 || self.unauthenticated_burst == 0 {
            return invalid("unauthenticated_per_min", "rate limits must be positive");
        }
        if self.token_calls_per_s == 0 || self.token_call_burst == 0 {
            return invalid("token_calls_per_s", "rate limits must be positive");
        }
        if let Some(url) = &self.tile_url {
            let template = ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p));
            if !(url.starts_with("https://") || url.starts_with("http://")) || !template {
                return invalid(
                    "tile_url",
                    "must be an http(s) URL template with {z}, {x} and {y}",
                );
            }
        }
        if self.tcp_connections == 0 || self.tcp_connections_per_source == 0 {
            return invalid("tcp_connections", "connection limits must be positive");
        }
        if self.http_connections == 0 {
            return invalid("http_connections", "must be positive");
        }
        if !(1..=300).contains(&self.tcp_auth_timeout_s) {
            return invalid("tcp_auth_timeout_s", "must be 1..=300");
        }
        if !(1..=300).contains(&self.http_header_timeout_s) {
            return invalid("http_header_timeout_s", "must be 1..=300");
        }
        if self.station_silent_s == 0 {
            return invalid("station_silent_s", "must be positive");
        }
        if self.index_window_s < 3_600 {
            return invalid("index_window_s", "must be at least 3600 (one hour)");
        }
        if self.hot_window_s < 2 * self.visit_gap_s {
            return invalid("hot_window_s", "must be at least twice visit_gap_s");
        }
        if let Some(token) = &self.admin_token {
            if token.0.len() < 16 {
                return invalid("admin_token", "must be at least 16 characters");
            }
        }
        Ok(())
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    pub fn admission_bound(&self) -> Duration {
        Duration::from_millis(self.admission_bound_ms)
    }

    /// The checkpoint interval for this configuration's database (see `checkpoint_interval_ms`).
    pub fn checkpoint_interval(&self) -> Duration {
        let default = if self.database.starts_with("sqlite:") {
            0
        } else {
            30_000
        };
        Duration::from_millis(self.checkpoint_interval_ms.unwrap_or(default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tagwatch.toml");
        std::fs::write(&path, "http = \"127.0.0.1:9000\"\nvisit_gap_s = 45\n").expect("write");
        let config = Config::from_file(&path).expect("parses");
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.visit_gap_s, 45);
        assert_eq!(
            config.udp.port(),
            7700,
            "untouched values keep their defaults"
        );

        std::fs::write(&path, "htpp = \"127.0.0.1:9000\"\n").expect("write");
        let err = Config::from_file(&path).expect_err("typo");
        assert!(err.to_string().contains("htpp"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let config = Config {
            flush_interval_ms: 0,
            ..Config::default()
        };
        let err = config.validate().expect_err("invalid");
        assert!(err.to_string().starts_with("flush_interval_ms"), "{err}");
        for admission_bound_ms in [0, 9, 60_001] {
            let config = Config {
                admission_bound_ms,
                ..Config::default()
            };
            let err = config.validate().expect_err("out of range");
            assert!(err.to_string().starts_with("admission_bound_ms"), "{err}");
        }
        let config = Config {
            admin_token: Some(Secret("short".into())),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let config = Config {
            checkpoint_interval_ms: Some(300_001),
            ..Config::default()
        };
        let err = config.validate().expect_err("invalid");
        assert!(
            err.to_string().starts_with("checkpoint_interval_ms"),
            "{err}"
        );
        assert!(Config::default().validate().is_ok());
        assert_eq!(
            Config::default().checkpoint_interval(),
            Duration::ZERO,
            "SQLite"
        );
        let postgres = Config {
            database: "postgres://tagwatch@db/tagwatch".into(),
            ..Config::default()
        };
        assert_eq!(postgres.checkpoint_interval(), Duration::from_secs(30));
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config {
            admin_token: Some(Secret("super-secret-token-value".into())),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("super-secret"));
    }
}
