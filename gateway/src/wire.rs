//! # TWB/1 wire format (`PROTOCOL.md`), pure: bytes in, frames out, no I/O.
//!
//! Decoding is split as in mini-redis: [`check`] only proves that a whole frame is present and
//! refuses an oversized one before it is buffered; [`verify`] checks the MAC with the station's key;
//! [`decode_verified`] parses exactly that frame. "Need more bytes" ([`WireError::Incomplete`]) is
//! its own variant, never mixed with "malformed". [`decode_datagram`] chains the three for one UDP
//! datagram, which must hold exactly one frame.

use bytes::{BufMut, BytesMut};
use hmac::{Hmac, Mac};
use nom::number::complete::{be_i32, be_i8, be_u16, be_u32, be_u64, be_u8};
use nom::Parser;
use sha2::Sha256;
use tagwatch_model::{FrameKey, SessionId, StationId, StationKey, TagId};

pub const MAGIC: [u8; 2] = *b"TW";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 28;
pub const MAC_LEN: usize = 16;
pub const RECORD_LEN: usize = 10;
pub const POSITION_LEN: usize = 8;
pub const STATUS_LEN: usize = 14;
pub const ACK_LEN: usize = 1;
/// Header flag bit 0: the body starts with the reader's own position.
pub const FLAG_POSITION: u8 = 0x01;
/// The largest body the `length` field can express.
pub const MAX_BODY_LEN: usize = u16::MAX as usize;

/// Everything that can be wrong with a frame, each variant carrying the offending value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not an error on a stream: wait for this many bytes in all. In a datagram it is final.
    #[error("incomplete frame: {needed} bytes needed, {have} present")]
    Incomplete { needed: usize, have: usize },
    #[error("bad magic {0:02x?}, expected \"TW\"")]
    Magic([u8; 2]),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("body length {length} is over the limit of {max} bytes")]
    TooLong { length: usize, max: usize },
    #[error("datagram is {actual} bytes but its header declares {declared}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("MAC does not verify")]
    Mac,
    #[error("unknown frame kind 0x{0:02x}")]
    Kind(u8),
    #[error("unknown header flags 0x{0:02x}")]
    Flags(u8),
    #[error("reserved header byte is {0}, must be 0")]
    Reserved(u8),
    #[error("station id 0 is not valid")]
    ZeroStation,
    #[error("session 0 is not valid")]
    ZeroSession,
    #[error("sequence number 0 is not valid")]
    ZeroSeq,
    #[error("{kind:?} body is {length} bytes, its content needs {expected}")]
    BodyLength {
        kind: Kind,
        length: usize,
        expected: usize,
    },
    #[error("record {index} has tag id 0")]
    ZeroTag { index: usize },
    #[error("record {index} has 0 reads")]
    ZeroReads { index: usize },
    #[error("position ({lat_e7}, {lon_e7}) is not on earth")]
    Position { lat_e7: i32, lon_e7: i32 },
    #[error("unknown ACK status {0}")]
    AckStatus(u8),
    #[error("flags 0x{0:02x} are not allowed on an ACK")]
    AckFlags(u8),
}

impl WireError {
    /// A short stable name, used as the `reason` label of the reject counters.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::Incomplete { .. } => "incomplete",
            WireError::Magic(_) => "magic",
            WireError::Version(_) => "version",
            WireError::TooLong { .. } => "too_long",
            WireError::LengthMismatch { .. } => "length",
            WireError::Mac => "mac",
            WireError::Kind(_) => "kind",
            WireError::Flags(_) => "flags",
            WireError::Reserved(_) => "reserved",
            WireError::ZeroStation => "zero_station",
            WireError::ZeroSession => "zero_session",
            WireError::ZeroSeq => "zero_seq",
            WireError::BodyLength { .. } => "body_length",
            WireError::ZeroTag { .. } => "zero_tag",
            WireError::ZeroReads { .. } => "zero_reads",
            WireError::Position { .. } => "position",
            WireError::AckStatus(_) => "ack_status",
            WireError::AckFlags(_) => "ack_flags",
        }
    }
}

/// The frame kinds of TWB/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Detections = 0x01,
    Status = 0x02,
    Ack = 0x81,
}

impl Kind {
    fn from_byte(byte: u8) -> Result<Self, WireError> {
        match byte {
            0x01 => Ok(Kind::Detections),
            0x02 => Ok(Kind::Status),
            0x81 => Ok(Kind::Ack),
            other => Err(WireError::Kind(other)),
        }
    }
}

/// The 28-byte header, as sent: enough to find the station's key and the frame's extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind_byte: u8,
    pub flags: u8,
    pub reserved: u8,
    pub length: u16,
    pub station: u32,
    pub session: u32,
    pub seq: u32,
    pub time_ms: u64,
}

impl Header {
    /// Total frame size: header, body and MAC.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + usize::from(self.length) + MAC_LEN
    }
}

/// A mobile reader's own position, exactly as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub lat_e7: i32,
    pub lon_e7: i32,
}

/// One DETECTIONS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub tag: TagId,
    pub age_ms: u16,
    pub rssi: i8,
    pub reads: u8,
    pub tag_flags: u8,
    pub antenna: u8,
}

/// Tag flag bits of a record (defined with the model, where the tracker reads them).
pub use tagwatch_model::tag_flags;

/// A STATUS heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub uptime_s: u32,
    pub backlog: u32,
    pub fw_version: u16,
    pub temp_c: i8,
    /// 0 mains, 1 battery, 2 solar; bit 7 set = power fault.
    pub power: u8,
    pub tags_in_range: u16,
}

/// The gateway's answer to one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckStatus {
    /// Durably stored.
    Accepted = 0,
    /// Already stored before.
    Duplicate = 1,
    /// Will never be accepted: do not resend.
    Rejected = 2,
    /// Not stored: resend later.
    Busy = 3,
}

impl AckStatus {
    fn from_byte(byte: u8) -> Result<Self, WireError> {
        match byte {
            0 => Ok(AckStatus::Accepted),
            1 => Ok(AckStatus::Duplicate),
            2 => Ok(AckStatus::Rejected),
            3 => Ok(AckStatus::Busy),
            other => Err(WireError::AckStatus(other)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AckStatus::Accepted => "accepted",
            AckStatus::Duplicate => "duplicate",
            AckStatus::Rejected => "rejected",
            AckStatus::Busy => "busy",
        }
    }
}

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Detections(Vec<Record>),
    Status(Status),
    Ack(AckStatus),
}

/// A whole decoded (or to-be-encoded) frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub station: StationId,
    pub session: SessionId,
    pub seq: u32,
    pub time_ms: u64,
    /// Present only on frames from mobile readers (flag bit 0).
    pub position: Option<Position>,
    pub body: Body,
}

impl Frame {
    /// What identifies the frame for exactly-once delivery.
    pub fn key(&self) -> FrameKey {
        FrameKey {
            station: self.station,
            session: self.session,
            seq: self.seq,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.body {
            Body::Detections(_) => Kind::Detections,
            Body::Status(_) => Kind::Status,
            Body::Ack(_) => Kind::Ack,
        }
    }

    /// The ACK answering this frame, built at gateway time `now_ms`.
    pub fn ack(&self, status: AckStatus, now_ms: u64) -> Frame {
        Frame {
            station: self.station,
            session: self.session,
            seq: self.seq,
            time_ms: now_ms,
            position: None,
            body: Body::Ack(status),
        }
    }
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

fn parse_header(input: &[u8]) -> Option<Header> {
    let (_, (_magic, _version, kind_byte, flags, reserved, length, station, session, seq, time_ms)) =
        (
            be_u16::<_, NomError>,
            be_u8,
            be_u8,
            be_u8,
            be_u8,
            be_u16,
            be_u32,
            be_u32,
            be_u32,
            be_u64,
        )
            .parse(input)
            .ok()?;
    Some(Header {
        kind_byte,
        flags,
        reserved,
        length,
        station,
        session,
        seq,
        time_ms,
    })
}

/// Proves that `buf` starts with one whole frame and returns its header.
///
/// Checks only what is needed to delimit the frame: magic, version and `length` (against
/// `max_body`, so an oversized frame is refused before it is buffered). Returns
/// [`WireError::Incomplete`] while the header or the rest of the frame has not arrived.
pub fn check(buf: &[u8], max_body: usize) -> Result<Header, WireError> {
    if buf.len() >= 2 && buf[..2] != MAGIC {
        return Err(WireError::Magic([buf[0], buf[1]]));
    }
    if buf.len() >= 3 && buf[2] != VERSION {
        return Err(WireError::Version(buf[2]));
    }
    let header = parse_header(buf).ok_or(WireError::Incomplete {
        needed: HEADER_LEN,
        have: buf.len(),
    })?;
    let length = usize::from(header.length);
    if length > max_body {
        return Err(WireError::TooLong {
            length,
            max: max_body,
        });
    }
    if buf.len() < header.frame_len() {
        return Err(WireError::Incomplete {
            needed: header.frame_len(),
            have: buf.len(),
        });
    }
    Ok(header)
}

fn mac_over(key: &StationKey, signed: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(signed);
    mac
}

/// Verifies the MAC of exactly one frame (as delimited by [`check`]), in constant time.
pub fn verify(frame: &[u8], key: &StationKey) -> Result<(), WireError> {
    let split = frame.len().checked_sub(MAC_LEN).ok_or(WireError::Mac)?;
    let (signed, tag) = frame.split_at(split);
    mac_over(key, signed)
        .verify_truncated_left(tag)
        .map_err(|_| WireError::Mac)
}

/// Parses exactly one frame whose MAC has been verified.
///
/// The checks here are about content, so their errors come from an authenticated station and
/// deserve a REJECTED answer.
pub fn decode_verified(frame: &[u8]) -> Result<Frame, WireError> {
    let header = check(frame, MAX_BODY_LEN)?;
    if frame.len() != header.frame_len() {
        return Err(WireError::LengthMismatch {
            declared: header.frame_len(),
            actual: frame.len(),
        });
    }
    let kind = Kind::from_byte(header.kind_byte)?;
    if header.reserved != 0 {
        return Err(WireError::Reserved(header.reserved));
    }
    if header.flags & !FLAG_POSITION != 0 {
        return Err(WireError::Flags(header.flags));
    }
    if kind == Kind::Ack && header.flags != 0 {
        return Err(WireError::AckFlags(header.flags));
    }
    let station = nonzero(header.station, WireError::ZeroStation).map(StationId)?;
    let session = nonzero(header.session, WireError::ZeroSession).map(SessionId)?;
    let seq = nonzero(header.seq, WireError::ZeroSeq)?;
    let body = &frame[HEADER_LEN..HEADER_LEN + usize::from(header.length)];
    let has_position = header.flags & FLAG_POSITION != 0;
    let (position, rest) = if has_position {
        let (rest, (lat_e7, lon_e7)) = (be_i32::<_, NomError>, be_i32)
            .parse(body)
            .map_err(|_| body_length(kind, body.len(), POSITION_LEN))?;
        if tagwatch_model::GeoPoint::from_e7(lat_e7, lon_e7).is_err() {
            return Err(WireError::Position { lat_e7, lon_e7 });
        }
        (Some(Position { lat_e7, lon_e7 }), rest)
    } else {
        (None, body)
    };
    let position_len = if has_position { POSITION_LEN } else { 0 };
    let body = match kind {
        Kind::Detections => Body::Detections(parse_detections(rest, body.len(), position_len)?),
        Kind::Status => Body::Status(parse_status(rest, body.len(), position_len)?),
        Kind::Ack => {
            let [status] = rest else {
                return Err(body_length(kind, body.len(), ACK_LEN));
            };
            Body::Ack(AckStatus::from_byte(*status)?)
        }
    };
    Ok(Frame {
        station,
        session,
        seq,
        time_ms: header.time_ms,
        position,
        body,
    })
}

fn nonzero(value: u32, error: WireError) -> Result<u32, WireError> {
    if value == 0 {
        Err(error)
    } else {
        Ok(value)
    }
}

fn body_length(kind: Kind, length: usize, expected: usize) -> WireError {
    WireError::BodyLength {
        kind,
        length,
        expected,
    }
}

fn parse_detections(
    rest: &[u8],
    body_len: usize,
    position_len: usize,
) -> Result<Vec<Record>, WireError> {
    let Ok((records, count)) = be_u16::<_, NomError>(rest) else {
        return Err(body_length(Kind::Detections, body_len, position_len + 2));
    };
    let expected = position_len + 2 + RECORD_LEN * usize::from(count);
    if body_len != expected {
        return Err(body_length(Kind::Detections, body_len, expected));
    }
    records
        .chunks_exact(RECORD_LEN)
        .enumerate()
        .map(|(index, chunk)| {
            let (_, (tag, age_ms, rssi, reads, tag_flags, antenna)) =
                (be_u32::<_, NomError>, be_u16, be_i8, be_u8, be_u8, be_u8)
                    .parse(chunk)
                    .map_err(|_| body_length(Kind::Detections, body_len, expected))?;
            if tag == 0 {
                return Err(WireError::ZeroTag { index });
            }
            if reads == 0 {
                return Err(WireError::ZeroReads { index });
            }
            Ok(Record {
                tag: TagId(tag),
                age_ms,
                rssi,
                reads,
                tag_flags,
                antenna,
            })
        })
        .collect()
}

fn parse_status(rest: &[u8], body_len: usize, position_len: usize) -> Result<Status, WireError> {
    let expected = position_len + STATUS_LEN;
    if body_len != expected {
        return Err(body_length(Kind::Status, body_len, expected));
    }
    let (_, (uptime_s, backlog, fw_version, temp_c, power, tags_in_range)) =
        (be_u32::<_, NomError>, be_u32, be_u16, be_i8, be_u8, be_u16)
            .parse(rest)
            .map_err(|_| body_length(Kind::Status, body_len, expected))?;
    Ok(Status {
        uptime_s,
        backlog,
        fw_version,
        temp_c,
        power,
        tags_in_range,
    })
}

/// Decodes one UDP datagram, which must be exactly one frame, with the station's key.
///
/// This is the whole receive path in one call (used by the vectors and the simulator); the servers
/// run its steps separately so that they can look up the key between [`check`] and [`verify`].
pub fn decode_datagram(
    datagram: &[u8],
    key: &StationKey,
    max_body: usize,
) -> Result<Frame, WireError> {
    datagram_header(datagram, max_body)?;
    verify(datagram, key)?;
    decode_verified(datagram)
}

/// Checks that a datagram holds exactly one frame (no bytes missing, none after it).
pub fn datagram_header(datagram: &[u8], max_body: usize) -> Result<Header, WireError> {
    match check(datagram, max_body) {
        Ok(header) if datagram.len() == header.frame_len() => Ok(header),
        Ok(header) => Err(WireError::LengthMismatch {
            declared: header.frame_len(),
            actual: datagram.len(),
        }),
        // Once the header is whole, a datagram shorter than it declares is a length mismatch:
        // no more bytes will arrive.
        Err(WireError::Incomplete { needed, have }) if have >= HEADER_LEN => {
            Err(WireError::LengthMismatch {
                declared: needed,
                actual: have,
            })
        }
        Err(other) => Err(other),
    }
}

/// Why a frame cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{count} records do not fit in one frame (at most {max})")]
    TooManyRecords { count: usize, max: usize },
}

/// Most records one frame can carry (the body length is a `u16`).
pub const MAX_RECORDS: usize = (MAX_BODY_LEN - POSITION_LEN - 2) / RECORD_LEN;

/// Encodes a frame and appends its MAC computed with `key`.
pub fn encode(frame: &Frame, key: &StationKey) -> Result<BytesMut, EncodeError> {
    let position_len = if frame.position.is_some() {
        POSITION_LEN
    } else {
        0
    };
    let body_len = position_len
        + match &frame.body {
            Body::Detections(records) => {
                if records.len() > MAX_RECORDS {
                    return Err(EncodeError::TooManyRecords {
                        count: records.len(),
                        max: MAX_RECORDS,
                    });
                }
                2 + RECORD_LEN * records.len()
            }
            Body::Status(_) => STATUS_LEN,
            Body::Ack(_) => ACK_LEN,
        };
    let mut out = BytesMut::with_capacity(HEADER_LEN + body_len + MAC_LEN);
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(frame.kind() as u8);
    out.put_u8(if frame.position.is_some() {
        FLAG_POSITION
    } else {
        0
    });
    out.put_u8(0);
    // Fits: bounded by MAX_RECORDS above.
    out.put_u16(u16::try_from(body_len).unwrap_or(u16::MAX));
    out.put_u32(frame.station.0);
    out.put_u32(frame.session.0);
    out.put_u32(frame.seq);
    out.put_u64(frame.time_ms);
    if let Some(position) = frame.position {
        out.put_i32(position.lat_e7);
        out.put_i32(position.lon_e7);
    }
    match &frame.body {
        Body::Detections(records) => {
            out.put_u16(u16::try_from(records.len()).unwrap_or(u16::MAX));
            for r in records {
                out.put_u32(r.tag.0);
                out.put_u16(r.age_ms);
                out.put_i8(r.rssi);
                out.put_u8(r.reads);
                out.put_u8(r.tag_flags);
                out.put_u8(r.antenna);
            }
        }
        Body::Status(s) => {
            out.put_u32(s.uptime_s);
            out.put_u32(s.backlog);
            out.put_u16(s.fw_version);
            out.put_i8(s.temp_c);
            out.put_u8(s.power);
            out.put_u16(s.tags_in_range);
        }
        Body::Ack(status) => out.put_u8(*status as u8),
    }
    let tag = mac_over(key, &out).finalize().into_bytes();
    out.put_slice(&tag[..MAC_LEN]);
    Ok(out)
}
