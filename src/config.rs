//! # Configuration: one tree of sections, loaded once from defaults, a TOML file, `TAGWATCH_*`
//! environment variables and command-line flags (each overriding the one before), validated, and
//! passed down. Secrets print as `<redacted>`.
//!
//! The defaults live here and only here: `tagwatch.example.toml` at the repository's root lists
//! every key at its default (a test holds it to that), and `tagwatch serve --print-config` prints
//! the configuration in effect. Durations are written with their unit (`"20ms"`, `"30s"`, `"1h"`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// A secret string (the admin token). Its `Debug` never shows it, nor does `--print-config`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// Everything `tagwatch serve` needs, by section (`[listen]`, `[store]`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: ListenSection,
    pub store: StoreSection,
    pub ingest: IngestSection,
    pub tracker: TrackerSection,
    pub stations: StationsSection,
    pub api: ApiSection,
}

/// `[listen]`: where the server listens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSection {
    /// UDP address stations send frames to.
    pub udp: SocketAddr,
    /// TCP address stations stream frames to.
    pub tcp: SocketAddr,
    /// HTTP address of the API and the web map.
    pub http: SocketAddr,
    /// TCP address for GPS trackers speaking GT06 (5023, Traccar's port); `""` turns it off.
    #[serde(with = "optional_addr")]
    pub gt06: Option<SocketAddr>,
}

/// An address that may be turned off with an empty string (TOML has no null).
mod optional_addr {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::net::SocketAddr;

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        super::parse_optional_addr(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `""` (off) or an address.
pub fn parse_optional_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| format!("{text:?} is not an address like 0.0.0.0:5023 (or \"\" for off): {e}"))
}

impl Default for ListenSection {
    fn default() -> Self {
        Self {
            udp: SocketAddr::from(([0, 0, 0, 0], 7700)),
            tcp: SocketAddr::from(([0, 0, 0, 0], 7700)),
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            gt06: Some(SocketAddr::from(([0, 0, 0, 0], 5023))),
        }
    }
}

impl ListenSection {
    /// Every socket on 127.0.0.1 at a port the system picks (tests, benches, the demo).
    pub fn loopback() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            udp: any,
            tcp: any,
            http: any,
            gt06: Some(any),
        }
    }
}

/// `[store]`: the database and how often it is written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// `sqlite://PATH` (created if missing), `sqlite::memory:`, or `postgres://USER@HOST/DB`.
    pub database: String,
    /// Longest a frame waits for its store flush.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How often a checkpoint writes the visits changed since the last one, each once, and drops
    /// the frame journal that covered them until then; zero: every flush writes visits (no
    /// journal). A minimum: the next checkpoint also waits twice as long as the last one took to
    /// commit. Unset: 30 s on Postgres (checkpoints commit on a connection of their own, alongside
    /// the flushes), zero on SQLite (one writer: a checkpoint would hold the flushes and ACKs up).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub checkpoint_interval: Option<Duration>,
    /// Visits older than this many days are dropped (except those of vehicles with an open theft
    /// case); an admin's `PUT /api/v1/settings/retention` overrides it.
    pub retention_days: u32,
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            database: "sqlite://tagwatch.sqlite".into(),
            flush_interval: Duration::from_millis(20),
            checkpoint_interval: None,
            retention_days: 90,
        }
    }
}

impl StoreSection {
    /// The checkpoint interval for this database (see `checkpoint_interval`).
    pub fn checkpoint_interval(&self) -> Duration {
        let default = if self.database.starts_with("sqlite:") {
            Duration::ZERO
        } else {
            Duration::from_secs(30)
        };
        self.checkpoint_interval.unwrap_or(default)
    }
}

/// `[ingest]`: how much the server takes on when more arrives than it can apply.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Frames per flush before flushing early. A full batch waits for the store (a frame's stolen
    /// and armed alerts are raised as it is taken in, before it waits).
    pub max_batch_frames: usize,
    /// Frames the gateway hands over between two takes of the ingest (every few ms); beyond it
    /// stations are told BUSY. The ingest's own queue is bounded by time: `admission_bound`.
    pub queue_frames: usize,
    /// Longest a frame may be expected to wait before it is applied, at the rate the ingest is
    /// measured to drain its queue; beyond it stations are told BUSY at once (a refused frame's
    /// stolen and armed alerts are raised all the same).
    #[serde(with = "humantime_serde")]
    pub admission_bound: Duration,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            max_batch_frames: 4096,
            queue_frames: 16_384,
            admission_bound: Duration::from_secs(1),
        }
    }
}

/// `[tracker]`: what makes a visit, and how much of the past stays in memory.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSection {
    /// Detections of a tag at one station closer than this are one visit.
    #[serde(with = "humantime_serde")]
    pub visit_gap: Duration,
    /// Station clocks further off than this are flagged (`station_clock_skew`) and their
    /// detections moved to the time the server trusts.
    #[serde(with = "humantime_serde")]
    pub clock_skew_limit: Duration,
    /// How long visits stay in memory after their last detection; later data for them is merged
    /// with the stored visit.
    #[serde(with = "humantime_serde")]
    pub hot_window: Duration,
    /// How far back the in-memory trajectory index reaches; questions about older times are
    /// answered from the store.
    #[serde(with = "humantime_serde")]
    pub index_window: Duration,
    /// A station with no frame (detections or STATUS) for this long raises `station_silent`.
    #[serde(with = "humantime_serde")]
    pub station_silent: Duration,
}

impl TrackerSection {
    /// The tracker's settings in its own units.
    pub fn tracker_config(&self) -> tagwatch_tracker::TrackerConfig {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        tagwatch_tracker::TrackerConfig {
            visit_gap_ms: ms(self.visit_gap),
            hot_window_ms: ms(self.hot_window),
            index_window_ms: ms(self.index_window),
            station_silent_ms: ms(self.station_silent),
            clock_skew_limit_ms: ms(self.clock_skew_limit),
            ..tagwatch_tracker::TrackerConfig::default()
        }
    }
}

impl Default for TrackerSection {
    fn default() -> Self {
        Self {
            visit_gap: Duration::from_secs(30),
            clock_skew_limit: Duration::from_secs(120),
            hot_window: Duration::from_secs(3_600),
            index_window: Duration::from_secs(86_400),
            station_silent: Duration::from_secs(90),
        }
    }
}

/// `[stations]`: what one station (or one address) may make the gateway hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StationsSection {
    /// Largest frame body accepted, bytes; a TCP header declaring more closes the connection.
    pub max_frame_body: usize,
    /// Station TCP connections open at once (lowered at start to fit the open-file limit).
    pub tcp_connections: usize,
    /// Station TCP connections from one source address that have not yet sent a frame with a
    /// valid MAC (authenticated stations do not count, so stations behind one NAT are all served).
    pub tcp_connections_per_source: usize,
    /// A station TCP connection that has sent no frame with a valid MAC this long after opening
    /// is closed.
    #[serde(with = "humantime_serde")]
    pub tcp_auth_timeout: Duration,
}

impl Default for StationsSection {
    fn default() -> Self {
        Self {
            max_frame_body: 32 * 1024,
            tcp_connections: 4_096,
            tcp_connections_per_source: 64,
            tcp_auth_timeout: Duration::from_secs(5),
        }
    }
}

/// `[api]`: the HTTP API and the web map.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Bearer token of the administrator (at least 16 characters); generated at start when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// Map tile URL template (`{z}/{x}/{y}`) for the web map; none: a plain background.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile_url: Option<String>,
    /// Roads to draw on the map's plain background (`[[lat, lon], [lat, lon]]` each): the demo
    /// gives its simulated city's; not read from a file (real deployments use `tile_url`).
    #[serde(skip)]
    pub roads: Vec<[[f64; 2]; 2]>,
    /// API calls per second one token may sustain, and the burst it may make.
    pub token_calls_per_s: u32,
    pub token_call_burst: u32,
    /// Requests without a valid token (logins included) one source address may make a minute,
    /// and its burst.
    pub unauthenticated_per_min: u32,
    pub unauthenticated_burst: u32,
    /// HTTP connections served at once (lowered at start to fit the open-file limit).
    pub http_connections: usize,
    /// Longest an HTTP client may take to send a request's header.
    #[serde(with = "humantime_serde")]
    pub http_header_timeout: Duration,
    /// A failed webhook delivery is tried again after this long, doubling each time (at most
    /// an hour apart) ...
    #[serde(with = "humantime_serde")]
    pub webhook_first_retry: Duration,
    /// ... until it is this old: then it is given up (`expired` in the delivery log).
    #[serde(with = "humantime_serde")]
    pub webhook_give_up_after: Duration,
}

impl ApiSection {
    /// The webhooks' retry timing.
    pub fn webhook_backoff(&self) -> tagwatch_api::webhooks::Backoff {
        tagwatch_api::webhooks::Backoff {
            first_retry: self.webhook_first_retry,
            give_up_after: self.webhook_give_up_after,
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            admin_token: None,
            tile_url: None,
            roads: Vec::new(),
            token_calls_per_s: tagwatch_api::limits::CALLS_PER_SECOND,
            token_call_burst: tagwatch_api::limits::CALL_BURST,
            unauthenticated_per_min: tagwatch_api::limits::UNAUTHENTICATED_PER_MINUTE,
            unauthenticated_burst: tagwatch_api::limits::UNAUTHENTICATED_BURST,
            http_connections: 1_024,
            http_header_timeout: Duration::from_secs(5),
            webhook_first_retry: tagwatch_api::webhooks::Backoff::default().first_retry,
            webhook_give_up_after: tagwatch_api::webhooks::Backoff::default().give_up_after,
        }
    }
}

/// Why a configuration cannot be used. The cause is part of the message (not a separate
/// source), so an operator reads it once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("config file {path}: {cause}")]
    Parse {
        path: String,
        cause: Box<toml::de::Error>,
    },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// `field` is unusable: `says` why.
fn invalid(field: &'static str, says: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        field,
        message: says.to_owned(),
    })
}

/// `field` must lie in `range`.
fn within<T: PartialOrd>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    says: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        invalid(field, says)
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        toml::from_str(&text).map_err(|cause| ConfigError::Parse {
            path: path.display().to_string(),
            cause: Box::new(cause),
        })
    }

    /// The configuration as a TOML file would say it (the admin token redacted).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every value of the configuration has a TOML form")
    }

    /// Checks every value a typo could make unusable; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let (store, ingest, tracker, stations, api) = (
            &self.store,
            &self.ingest,
            &self.tracker,
            &self.stations,
            &self.api,
        );
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|p| store.database.starts_with(p)) {
            return invalid(
                "store.database",
                "must be sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB",
            );
        }
        within(
            "store.flush_interval",
            store.flush_interval,
            ms(1)..=s(10),
            "must be 1ms..=10s",
        )?;
        within(
            "store.checkpoint_interval",
            store.checkpoint_interval(),
            Duration::ZERO..=s(300),
            "must be 0s..=5m",
        )?;
        within(
            "store.retention_days",
            store.retention_days,
            1..=u32::MAX,
            "must be at least 1",
        )?;
        within(
            "ingest.max_batch_frames",
            ingest.max_batch_frames,
            1..=usize::MAX,
            "must be positive",
        )?;
        within(
            "ingest.queue_frames",
            ingest.queue_frames,
            1..=usize::MAX,
            "must be positive",
        )?;
        within(
            "ingest.admission_bound",
            ingest.admission_bound,
            ms(10)..=s(60),
            "must be 10ms..=60s",
        )?;
        within(
            "tracker.visit_gap",
            tracker.visit_gap,
            s(1)..=s(3_600),
            "must be 1s..=1h",
        )?;
        within(
            "tracker.hot_window",
            tracker.hot_window,
            2 * tracker.visit_gap..=Duration::MAX,
            "must be at least twice tracker.visit_gap",
        )?;
        within(
            "tracker.index_window",
            tracker.index_window,
            s(3_600)..=Duration::MAX,
            "must be at least 1h",
        )?;
        within(
            "tracker.station_silent",
            tracker.station_silent,
            s(1)..=Duration::MAX,
            "must be at least 1s",
        )?;
        within(
            "stations.max_frame_body",
            stations.max_frame_body,
            64..=tagwatch_gateway::wire::MAX_BODY_LEN,
            "must be 64..=65535",
        )?;
        within(
            "stations.tcp_connections",
            stations.tcp_connections,
            1..=usize::MAX,
            "must be positive",
        )?;
        within(
            "stations.tcp_connections_per_source",
            stations.tcp_connections_per_source,
            1..=usize::MAX,
            "must be positive",
        )?;
        within(
            "stations.tcp_auth_timeout",
            stations.tcp_auth_timeout,
            s(1)..=s(300),
            "must be 1s..=5m",
        )?;
        for (field, rate) in [
            ("api.token_calls_per_s", api.token_calls_per_s),
            ("api.token_call_burst", api.token_call_burst),
            ("api.unauthenticated_per_min", api.unauthenticated_per_min),
            ("api.unauthenticated_burst", api.unauthenticated_burst),
        ] {
            within(field, rate, 1..=u32::MAX, "rate limits must be positive")?;
        }
        within(
            "api.http_connections",
            api.http_connections,
            1..=usize::MAX,
            "must be positive",
        )?;
        within(
            "api.http_header_timeout",
            api.http_header_timeout,
            s(1)..=s(300),
            "must be 1s..=5m",
        )?;
        within(
            "api.webhook_first_retry",
            api.webhook_first_retry,
            Duration::from_millis(100)..=s(3_600),
            "must be 100ms..=1h",
        )?;
        within(
            "api.webhook_give_up_after",
            api.webhook_give_up_after,
            s(60)..=s(30 * 86_400),
            "must be 1m..=30d",
        )?;
        if let Some(url) = &api.tile_url {
            let template = ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p));
            let http = url.starts_with("https://") || url.starts_with("http://");
            if !(http && template) {
                return invalid(
                    "api.tile_url",
                    "must be an http(s) URL template with {z}, {x} and {y}",
                );
            }
        }
        if let Some(token) = &api.admin_token {
            within(
                "api.admin_token",
                token.0.len(),
                16..=usize::MAX,
                "must be at least 16 characters",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example shipped at the repository's root.
    const EXAMPLE: &str = include_str!("../tagwatch.example.toml");

    #[test]
    fn a_file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tagwatch.toml");
        let text = "[listen]\nhttp = \"127.0.0.1:9000\"\n[tracker]\nvisit_gap = \"45s\"\n";
        std::fs::write(&path, text).expect("write");
        let config = Config::from_file(&path).expect("parses");
        assert_eq!(config.listen.http.port(), 9000);
        assert_eq!(config.tracker.visit_gap, Duration::from_secs(45));
        assert_eq!(
            config.listen.udp.port(),
            7700,
            "untouched values keep their defaults"
        );

        std::fs::write(&path, "[listen]\nhtpp = \"127.0.0.1:9000\"\n").expect("write");
        let err = Config::from_file(&path).expect_err("typo");
        assert!(err.to_string().contains("htpp"), "{err}");
        // A file from before the sections: its keys are named as unknown.
        std::fs::write(&path, "visit_gap_s = 45\n").expect("write");
        let err = Config::from_file(&path).expect_err("flat key");
        assert!(err.to_string().contains("visit_gap_s"), "{err}");
        std::fs::write(&path, "[tracker]\nvisit_gap = \"45 parsecs\"\n").expect("write");
        let err = Config::from_file(&path).expect_err("not a duration");
        assert!(err.to_string().contains("visit_gap"), "{err}");
    }

    #[test]
    fn the_example_file_lists_every_setting_at_its_default() {
        let example: Config = toml::from_str(EXAMPLE).expect("the example parses");
        assert_eq!(example, Config::default());
        // Every key the defaults have is written out in the example (a missing one would parse
        // to its default unseen).
        let defaults: toml::Table = toml::from_str(&Config::default().to_toml()).expect("toml");
        let written: toml::Table = toml::from_str(EXAMPLE).expect("toml");
        for (section, keys) in &defaults {
            let keys = keys.as_table().expect("a section");
            let in_example = written
                .get(section)
                .and_then(|s| s.as_table())
                .unwrap_or_else(|| panic!("[{section}] is in the example"));
            for key in keys.keys() {
                assert!(
                    in_example.contains_key(key),
                    "{section}.{key} is in the example"
                );
            }
        }
    }

    #[test]
    fn validation_names_the_key() {
        let named = |config: &Config| config.validate().expect_err("invalid").to_string();
        let mut config = Config::default();
        config.store.flush_interval = Duration::ZERO;
        assert!(named(&config).starts_with("store.flush_interval"));
        for bound in [0, 9, 60_001] {
            let mut config = Config::default();
            config.ingest.admission_bound = Duration::from_millis(bound);
            assert!(named(&config).starts_with("ingest.admission_bound"));
        }
        let mut config = Config::default();
        config.api.admin_token = Some(Secret("short".into()));
        assert!(named(&config).starts_with("api.admin_token"));
        let mut config = Config::default();
        config.store.checkpoint_interval = Some(Duration::from_millis(300_001));
        assert!(named(&config).starts_with("store.checkpoint_interval"));
        let mut config = Config::default();
        config.tracker.hot_window = Duration::from_secs(59);
        assert!(named(&config).starts_with("tracker.hot_window"));
        let mut config = Config::default();
        config.store.database = "mysql://db".into();
        assert!(named(&config).starts_with("store.database"));
        let mut config = Config::default();
        config.api.tile_url = Some("ftp://tiles/{z}/{x}/{y}".into());
        assert!(named(&config).starts_with("api.tile_url"));
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn the_checkpoint_interval_follows_the_database_unless_set() {
        let mut config = Config::default();
        assert_eq!(config.store.checkpoint_interval(), Duration::ZERO, "SQLite");
        config.store.database = "postgres://tagwatch@db/tagwatch".into();
        assert_eq!(config.store.checkpoint_interval(), Duration::from_secs(30));
        config.store.checkpoint_interval = Some(Duration::from_secs(5));
        assert_eq!(config.store.checkpoint_interval(), Duration::from_secs(5));
    }

    #[test]
    fn secrets_do_not_print() {
        let mut config = Config::default();
        config.api.admin_token = Some(Secret("super-secret-token-value".into()));
        assert!(!format!("{config:?}").contains("super-secret"));
        let printed = config.to_toml();
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }
}
