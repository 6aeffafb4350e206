//! # Watch rules: each turns what the tracker just learned into alerts.
//!
//! One module per rule family, each owning its own state (who is stolen, armed, paired; which
//! visit has alerted) and judging a [`Sighting`] the tracker hands it: the tracker applies a frame
//! (visits, placement, trajectories) and then asks each rule, which answers with [`Draft`]s; the
//! tracker gives each draft its place in the alert stream ([`raise`]).
//!
//! Every alert gets a deterministic id from what raised it (the frame, or the station and time),
//! so a frame applied again after a crash yields the same alert and the store keeps one; and one
//! alert per visit (or per crossing, per silence), not one per detection.
//!
//! - [`stolen`]: the hotlist: `stolen_sighting`, once per visit.
//! - [`armed`]: armed vehicles: `armed_moved`.
//! - [`flags`]: the tag's own flags: `panic`, `tag_tamper`, `low_battery`.
//! - [`clone`]: `clone_suspected`, one tag heard too far apart too soon.
//! - [`fence`]: `geofence` crossings.
//! - [`companion`]: `companion_missing`, a paired tag heard without its companion.
//! - [`station`]: alerts about a station (silent, clock, power, heat, backlog).

pub(crate) mod armed;
pub(crate) mod clone;
pub mod companion;
pub(crate) mod fence;
pub(crate) mod flags;
pub(crate) mod station;
pub(crate) mod stolen;

use tagwatch_model::{
    Alert, AlertDetail, AlertId, AlertKind, Detection, FrameKey, GeoPoint, StationId, TagId,
    VisitId,
};

/// One detection as the watch rules see it: the frame it came in, the visit it joined, and where
/// it was heard.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sighting<'a> {
    pub frame: FrameKey,
    pub d: &'a Detection,
    pub visit: VisitId,
    pub position: GeoPoint,
}

/// An alert about to be raised: everything but its place in the stream.
#[derive(Debug)]
pub(crate) struct Draft {
    pub kind: AlertKind,
    pub id: String,
    pub tag: Option<TagId>,
    pub station: StationId,
    pub position: GeoPoint,
    pub seen_at_ms: i64,
    pub detail: AlertDetail,
}

impl Draft {
    /// A draft about a sighting, its id scoped by `scope`.
    pub fn about(kind: AlertKind, scope: &str, s: Sighting<'_>) -> Self {
        Self::heard(kind, scope, s.frame, s.d, s.position)
    }

    /// A draft about detection `d` of `frame`, heard at `position` (whatever visit it joins).
    pub fn heard(
        kind: AlertKind,
        scope: &str,
        frame: FrameKey,
        d: &Detection,
        position: GeoPoint,
    ) -> Self {
        Self {
            kind,
            id: frame_alert_id(scope, d.tag, frame),
            tag: Some(d.tag),
            station: d.station,
            position,
            seen_at_ms: d.seen_at_ms,
            detail: AlertDetail::default(),
        }
    }
}

/// The deterministic id of an alert raised by `tag` in `frame`:
/// `{scope}-{tag}-{station}-{session}-{seq}`, so the same frame applied again (after a crash)
/// yields the same id and the store keeps one alert.
pub(crate) fn frame_alert_id(scope: &str, tag: TagId, frame: FrameKey) -> String {
    let FrameKey {
        station,
        session,
        seq,
    } = frame;
    format!("{scope}-{tag}-{station}-{session}-{seq}")
}

/// Gives a draft the next sequence number.
pub(crate) fn raise(next_seq: &mut i64, draft: Draft, now_ms: i64) -> Alert {
    let alert = Alert {
        seq: *next_seq,
        id: AlertId(draft.id),
        kind: draft.kind,
        tag: draft.tag,
        station: draft.station,
        position: draft.position,
        seen_at_ms: draft.seen_at_ms,
        raised_at_ms: now_ms,
        detail: draft.detail,
    };
    *next_seq += 1;
    alert
}
