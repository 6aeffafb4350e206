//! # Frame parts: one verified frame cut into a message per partition
//!
//! The gateway (`tagwatch gateway`) splits each verified frame's detections by the partition of
//! their vehicle ([`crate::partition`]) and publishes one part per partition present; the tracker
//! shard that owns the partition applies it. A part is a TWB/1 frame itself (the station's key
//! fields, its time and position, the subset of records in their order), so one codec reads
//! both. The MAC a part carries is made with [`BUS_KEY`] and proves nothing: the station's MAC was
//! checked by the gateway, and the bus is trusted (NATS authenticates its clients).
//!
//! A part's JetStream message id is (station, session, sequence, partition): a resend of the
//! frame through any gateway publishes the same ids, and JetStream stores each part once.

use bytes::Bytes;
use tagwatch_gateway::wire::{self, Body, Frame, WireError};
use tagwatch_model::StationKey;

use crate::partition::{station_partition, Groups};

/// The key parts are encoded with (not a secret; see the module's text).
pub const BUS_KEY: StationKey = StationKey([0x42; 32]);

/// One frame's records for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub partition: u16,
    pub frame: Frame,
}

impl Part {
    /// The JetStream message id: the same for every resend of the frame.
    pub fn message_id(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.frame.station.0, self.frame.session.0, self.frame.seq, self.partition
        )
    }

    /// The subject the part is published on.
    pub fn subject(&self) -> String {
        crate::bus::partition_subject(self.partition)
    }

    /// The part's bytes (a TWB/1 frame).
    pub fn encode(&self) -> Bytes {
        on_the_bus(&self.frame)
    }

    /// A part read back from the bus.
    pub fn decode(partition: u16, bytes: &[u8]) -> Result<Self, WireError> {
        wire::check(bytes, wire::MAX_BODY_LEN)?;
        Ok(Self {
            partition,
            frame: wire::decode_verified(bytes)?,
        })
    }
}

/// A frame's bytes on the bus (a part, or a STATUS frame whole). A frame that decoded always
/// encodes again, so there is no error to carry.
pub fn on_the_bus(frame: &Frame) -> Bytes {
    wire::encode(frame, &BUS_KEY)
        .map(|b| b.freeze())
        .unwrap_or_default()
}

/// Splits a frame's detections by partition, in partition order; records keep their order
/// within a part. The station's own partition ([`station_partition`]) always has a part, without
/// records if none of its vehicles is in the frame: its worker watches the station's health and
/// must see every frame. A STATUS frame is one part, whole, to the station's partition.
pub fn split(frame: &Frame, groups: &Groups, partitions: u16) -> Vec<Part> {
    let station_part = station_partition(frame.station, partitions);
    let Body::Detections(records) = &frame.body else {
        return vec![Part {
            partition: station_part,
            frame: frame.clone(),
        }];
    };
    let mut by_partition: std::collections::BTreeMap<u16, Vec<wire::Record>> =
        std::collections::BTreeMap::new();
    by_partition.insert(station_part, Vec::new());
    for record in records {
        by_partition
            .entry(groups.partition(record.tag, partitions))
            .or_default()
            .push(*record);
    }
    by_partition
        .into_iter()
        .map(|(partition, records)| Part {
            partition,
            frame: Frame {
                body: Body::Detections(records),
                ..frame.clone()
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tagwatch_gateway::wire::{Position, Record};
    use tagwatch_model::{SessionId, StationId, TagId};

    fn frame(tags: &[u32], position: Option<Position>) -> Frame {
        Frame {
            station: StationId(12),
            session: SessionId(3),
            seq: 77,
            time_ms: 1_700_000_000_000,
            position,
            body: Body::Detections(
                tags.iter()
                    .enumerate()
                    .map(|(i, &tag)| Record {
                        tag: TagId(tag),
                        age_ms: u16::try_from(i).unwrap_or(0),
                        rssi: -60,
                        reads: 2,
                        tag_flags: 0,
                        antenna: 1,
                    })
                    .collect(),
            ),
        }
    }

    fn tags_of(frame: &Frame) -> Vec<u32> {
        match &frame.body {
            Body::Detections(records) => records.iter().map(|r| r.tag.0).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_part_is_named_by_its_frame_and_partition_and_reads_back_whole() {
        let position = Some(Position {
            lat_e7: 230_000_000,
            lon_e7: 1_160_000_000,
        });
        let parts = split(
            &frame(&[1, 2, 3, 4, 5, 6, 7, 8], position),
            &Groups::default(),
            4,
        );
        assert!(parts.len() > 1);
        for part in &parts {
            assert_eq!(part.message_id(), format!("12.3.77.{}", part.partition));
            assert_eq!(part.subject(), format!("tw.part.{}", part.partition));
            let back = Part::decode(part.partition, &part.encode()).expect("decodes");
            assert_eq!(&back, part);
        }
    }

    #[test]
    fn a_status_frame_is_one_part_to_its_stations_partition() {
        let status = Frame {
            body: Body::Status(wire::Status {
                uptime_s: 1,
                backlog: 0,
                fw_version: 1,
                temp_c: 20,
                power: 1,
                tags_in_range: 0,
            }),
            ..frame(&[], None)
        };
        let parts = split(&status, &Groups::default(), 64);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].partition, station_partition(status.station, 64));
        assert_eq!(parts[0].frame, status);
    }

    proptest! {
        #[test]
        fn the_parts_hold_every_record_once_each_in_its_partition(
            tags in proptest::collection::vec(1u32..5_000, 0..300),
            partitions in 1u16..70,
        ) {
            let groups = Groups::from_pairs([(TagId(10), TagId(4_000))]);
            let whole = frame(&tags, None);
            let parts = split(&whole, &groups, partitions);
            let mut seen = Vec::new();
            let station_part = station_partition(whole.station, partitions);
            prop_assert!(parts.iter().any(|p| p.partition == station_part), "the station's");
            for part in &parts {
                let part_tags = tags_of(&part.frame);
                prop_assert!(!part_tags.is_empty() || part.partition == station_part);
                for &tag in &part_tags {
                    prop_assert_eq!(groups.partition(TagId(tag), partitions), part.partition);
                }
                // Same key fields and time: its message id and the visits it makes are the frame's.
                prop_assert_eq!(part.frame.key(), whole.key());
                prop_assert_eq!(part.frame.time_ms, whole.time_ms);
                seen.extend(part_tags);
            }
            // Every record once; within a part in the frame's order.
            let mut expected = tags.clone();
            expected.sort_unstable();
            seen.sort_unstable();
            prop_assert_eq!(seen, expected);
            prop_assert!(parts.windows(2).all(|w| w[0].partition < w[1].partition));
        }
    }
}
