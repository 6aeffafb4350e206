//! # The commands stream: reference data changed through the API, to every shard.
//!
//! In `serve` the API tells the one tracker of a theft, an armed vehicle, a geofence, a pair or
//! a new station. In a cluster an API node writes the change to the store first, then publishes
//! it to `tw.commands` in the `TW_COMMANDS` stream. A shard's partition worker notes the
//! stream's last sequence before it restores its tracker from the store, then reads every
//! command after it: a change is either in what it restored or among the commands it reads
//! (seeing one in both is harmless: commands are idempotent). A command about a vehicle goes to
//! the partition of that vehicle; the others (stations, geofences, pairs) to every partition.

use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use serde::{Deserialize, Serialize};
use std::future::IntoFuture;
use tagwatch_model::{CaseId, GeoPoint, Geofence, Station, StationId, TagId};
use tagwatch_tracker::{Command, LastSeen};

/// The stream of commands.
pub const COMMANDS_STREAM: &str = "TW_COMMANDS";
/// Its one subject.
pub const COMMANDS_SUBJECT: &str = "tw.commands";

/// A command as it travels (the tracker's [`Command`] has no serialised form of its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
enum OnTheBus {
    Station {
        id: StationId,
        name: String,
        position: GeoPoint,
    },
    Stolen {
        tag: TagId,
        case: i64,
        since_ms: Option<i64>,
        stored: Option<(StationId, GeoPoint, i64)>,
    },
    Recovered {
        tag: TagId,
    },
    Armed {
        tag: TagId,
        position: GeoPoint,
    },
    Disarmed {
        tag: TagId,
    },
    Geofence {
        fence: Geofence,
    },
    RemoveGeofence {
        id: i64,
    },
    Pair {
        tag: TagId,
        companion: TagId,
    },
    Unpair {
        tag: TagId,
    },
}

/// A command's bytes on the stream.
pub fn encode(command: &Command) -> Vec<u8> {
    let bus = match command.clone() {
        Command::Station(s) => OnTheBus::Station {
            id: s.id,
            name: s.name,
            position: s.position,
        },
        Command::Stolen {
            tag,
            case,
            since_ms,
            stored,
        } => OnTheBus::Stolen {
            tag,
            case: case.0,
            since_ms,
            stored: stored.map(|s| (s.station, s.position, s.seen_at_ms)),
        },
        Command::Recovered { tag } => OnTheBus::Recovered { tag },
        Command::Armed { tag, position } => OnTheBus::Armed { tag, position },
        Command::Disarmed { tag } => OnTheBus::Disarmed { tag },
        Command::Geofence(fence) => OnTheBus::Geofence { fence },
        Command::RemoveGeofence { id } => OnTheBus::RemoveGeofence { id },
        Command::Pair { tag, companion } => OnTheBus::Pair { tag, companion },
        Command::Unpair { tag } => OnTheBus::Unpair { tag },
    };
    serde_json::to_vec(&bus).unwrap_or_default()
}

/// A command read back from the stream.
pub fn decode(bytes: &[u8]) -> Result<Command, String> {
    let bus: OnTheBus = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok(match bus {
        OnTheBus::Station { id, name, position } => {
            Command::Station(Station { id, name, position })
        }
        OnTheBus::Stolen {
            tag,
            case,
            since_ms,
            stored,
        } => Command::Stolen {
            tag,
            case: CaseId(case),
            since_ms,
            stored: stored.map(|(station, position, seen_at_ms)| LastSeen {
                station,
                position,
                seen_at_ms,
            }),
        },
        OnTheBus::Recovered { tag } => Command::Recovered { tag },
        OnTheBus::Armed { tag, position } => Command::Armed { tag, position },
        OnTheBus::Disarmed { tag } => Command::Disarmed { tag },
        OnTheBus::Geofence { fence } => Command::Geofence(fence),
        OnTheBus::RemoveGeofence { id } => Command::RemoveGeofence { id },
        OnTheBus::Pair { tag, companion } => Command::Pair { tag, companion },
        OnTheBus::Unpair { tag } => Command::Unpair { tag },
    })
}

/// The vehicle a command is about, if it is about one vehicle only (its partition applies it).
pub fn vehicle_of(command: &Command) -> Option<TagId> {
    match command {
        Command::Stolen { tag, .. }
        | Command::Recovered { tag }
        | Command::Armed { tag, .. }
        | Command::Disarmed { tag } => Some(*tag),
        Command::Station(_)
        | Command::Geofence(_)
        | Command::RemoveGeofence { .. }
        | Command::Pair { .. }
        | Command::Unpair { .. } => None,
    }
}

/// Publishes `command` and waits until JetStream has stored it.
pub async fn publish(jetstream: &Context, command: &Command) -> Result<u64, String> {
    let ack = jetstream
        .send_publish(
            COMMANDS_SUBJECT,
            PublishMessage::build().payload(encode(command).into()),
        )
        .await
        .map_err(|e| e.to_string())?;
    ack.into_future()
        .await
        .map(|ack| ack.sequence)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> GeoPoint {
        GeoPoint {
            lat: 23.1,
            lon: 113.2,
        }
    }

    #[test]
    fn every_command_survives_the_stream() {
        let commands = vec![
            Command::Station(Station {
                id: StationId(4),
                name: "Gate 4".into(),
                position: point(),
            }),
            Command::Stolen {
                tag: TagId(9),
                case: CaseId(3),
                since_ms: Some(1_000),
                stored: Some(LastSeen {
                    station: StationId(4),
                    position: point(),
                    seen_at_ms: 900,
                }),
            },
            Command::Stolen {
                tag: TagId(9),
                case: CaseId(3),
                since_ms: None,
                stored: None,
            },
            Command::Recovered { tag: TagId(9) },
            Command::Armed {
                tag: TagId(9),
                position: point(),
            },
            Command::Disarmed { tag: TagId(9) },
            Command::Geofence(Geofence {
                id: 2,
                name: "depot".into(),
                area: vec![point(), point(), point()],
                tags: vec![TagId(9)],
                on_enter: true,
                on_leave: false,
            }),
            Command::RemoveGeofence { id: 2 },
            Command::Pair {
                tag: TagId(9),
                companion: TagId(10),
            },
            Command::Unpair { tag: TagId(9) },
        ];
        for command in commands {
            let back = decode(&encode(&command)).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{command:?}"));
        }
        assert!(decode(b"{\"command\":\"launch\"}").is_err());
    }
}
