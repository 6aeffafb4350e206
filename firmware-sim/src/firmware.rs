//! # A station's firmware: merges the reads it hears into TWB/1 frames.
//!
//! A tag heard several times within one frame interval becomes one record (latest time, strongest
//! signal, read count). A DETECTIONS frame goes out every `frame_interval_ms` while anything was
//! heard, a STATUS heartbeat every `status_interval_ms`. Sequence numbers start at 1 per session.

use std::collections::BTreeMap;
use tagwatch_gateway::wire::{Body, Frame, Record, Status};
use tagwatch_model::{tag_flags, SessionId, StationId, TagId};

/// Records per DETECTIONS frame at most; a busier interval is split over several frames.
pub const MAX_RECORDS_PER_FRAME: usize = 1_000;

#[derive(Debug, Clone, Copy)]
struct Merged {
    last_heard_ms: i64,
    rssi: i8,
    reads: u8,
    tag_flags: u8,
}

/// One station's frame builder.
#[derive(Debug)]
pub struct Firmware {
    pub station: StationId,
    pub session: SessionId,
    next_seq: u32,
    boot_ms: i64,
    frame_interval_ms: i64,
    status_interval_ms: i64,
    next_frame_ms: i64,
    next_status_ms: i64,
    heard: BTreeMap<TagId, Merged>,
    /// Frames built but not yet acknowledged, as reported by the link (for STATUS).
    pub backlog: u32,
}

impl Firmware {
    /// `phase_ms` staggers stations so they do not all send in the same millisecond.
    pub fn new(
        station: StationId,
        session: SessionId,
        boot_ms: i64,
        frame_interval_ms: i64,
        status_interval_ms: i64,
        phase_ms: i64,
    ) -> Self {
        Self {
            station,
            session,
            next_seq: 1,
            boot_ms,
            frame_interval_ms,
            status_interval_ms,
            next_frame_ms: boot_ms + phase_ms % frame_interval_ms.max(1),
            next_status_ms: boot_ms + phase_ms % status_interval_ms.max(1),
            heard: BTreeMap::new(),
            backlog: 0,
        }
    }

    /// A read of `tag`; `moving`: its beacon carried the accelerometer's MOVING flag.
    pub fn hear(&mut self, tag: TagId, at_ms: i64, rssi: i8, moving: bool) {
        let merged = self.heard.entry(tag).or_insert(Merged {
            last_heard_ms: at_ms,
            rssi,
            reads: 0,
            tag_flags: 0,
        });
        if at_ms >= merged.last_heard_ms {
            merged.tag_flags = if moving { tag_flags::MOVING } else { 0 };
        }
        merged.last_heard_ms = merged.last_heard_ms.max(at_ms);
        merged.rssi = merged.rssi.max(rssi);
        merged.reads = merged.reads.saturating_add(1);
    }

    fn frame(&mut self, now_ms: i64, body: Body) -> Frame {
        let seq = self.next_seq;
        self.next_seq += 1;
        Frame {
            station: self.station,
            session: self.session,
            seq,
            time_ms: u64::try_from(now_ms).unwrap_or(0),
            position: None,
            body,
        }
    }

    /// The frames due at `now_ms`.
    pub fn poll(&mut self, now_ms: i64, out: &mut Vec<Frame>) {
        if now_ms >= self.next_frame_ms {
            self.next_frame_ms += self.frame_interval_ms;
            if !self.heard.is_empty() {
                let heard = std::mem::take(&mut self.heard);
                let records: Vec<Record> = heard
                    .into_iter()
                    .map(|(tag, m)| Record {
                        tag,
                        age_ms: u16::try_from((now_ms - m.last_heard_ms).max(0))
                            .unwrap_or(u16::MAX),
                        rssi: m.rssi,
                        reads: m.reads.max(1),
                        tag_flags: m.tag_flags,
                        antenna: 1,
                    })
                    .collect();
                for chunk in records.chunks(MAX_RECORDS_PER_FRAME) {
                    let frame = self.frame(now_ms, Body::Detections(chunk.to_vec()));
                    out.push(frame);
                }
            }
        }
        if now_ms >= self.next_status_ms {
            self.next_status_ms += self.status_interval_ms;
            let status = Status {
                uptime_s: u32::try_from((now_ms - self.boot_ms) / 1000).unwrap_or(u32::MAX),
                backlog: self.backlog,
                fw_version: 0x0102,
                temp_c: 31,
                power: 0,
                tags_in_range: 0,
            };
            let frame = self.frame(now_ms, Body::Status(status));
            out.push(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_an_interval_merge_into_one_record() {
        let mut fw = Firmware::new(StationId(1), SessionId(9), 0, 1_000, 30_000, 500);
        let mut out = Vec::new();
        fw.hear(TagId(5), 100, -70, false);
        fw.hear(TagId(5), 300, -60, true);
        fw.hear(TagId(6), 200, -80, false);
        fw.poll(400, &mut out);
        assert!(out.is_empty(), "not due yet");
        fw.poll(500, &mut out);
        let [frame, status] = out.as_slice() else {
            panic!("DETECTIONS and STATUS expected, got {out:?}")
        };
        assert_eq!((frame.seq, status.seq), (1, 2));
        assert!(matches!(status.body, Body::Status(_)));
        let Body::Detections(records) = &frame.body else {
            panic!("detections expected")
        };
        assert_eq!(records.len(), 2);
        assert_eq!((records[0].tag, records[0].age_ms), (TagId(5), 200));
        assert_eq!((records[0].rssi, records[0].reads), (-60, 2));
        assert_eq!(
            (records[0].tag_flags, records[1].tag_flags),
            (tag_flags::MOVING, 0),
            "as its latest beacon said"
        );
    }
}
