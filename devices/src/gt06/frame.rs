//! # GT06 framing: a TCP byte stream cut into whole frames.
//!
//! Pure. [`check`] proves a whole frame is present and refuses a foreign or oversized one before
//! its body is buffered (as the TWB/1 framing does); [`Frame::parse`] then checks the CRC and
//! splits the frame into protocol number, content and serial number.
//!
//! ```text
//! 78 78 | len u8  | protocol | content | serial u16 | crc u16 | 0D 0A    len = 1 + content + 4
//! 79 79 | len u16 | protocol | content | serial u16 | crc u16 | 0D 0A
//! ```
//! The CRC is CRC-ITU (X.25) over the length field through the serial number.

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The largest frame accepted, start and stop bytes included. The longest message TagWatch
/// reads is well under 300 bytes; photo and file uploads (which it does not read) can be longer,
/// and a sender must not make the server buffer 64 KiB per connection for them.
pub const MAX_FRAME_LEN: usize = 1024;
/// Protocol number, serial and CRC: the least a length field can count.
const MIN_LENGTH: usize = 5;
const STOP: [u8; 2] = [0x0D, 0x0A];

/// What is wrong with the bytes of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not an error on a stream: wait for this many bytes in all.
    #[error("incomplete frame: {needed} bytes needed")]
    Incomplete { needed: usize },
    #[error("bad start bytes {0:02x?}, expected 78 78 or 79 79")]
    Start([u8; 2]),
    #[error("length {0} is below the minimum of 5")]
    TooShort(usize),
    #[error("frame of {length} bytes is over the limit of {max}")]
    TooLong { length: usize, max: usize },
    #[error("bad stop bytes {0:02x?}, expected 0d 0a")]
    Stop([u8; 2]),
    #[error("CRC 0x{actual:04x} does not match the computed 0x{expected:04x}")]
    Crc { expected: u16, actual: u16 },
}

impl FrameError {
    /// A short stable name, the `reason` label of the reject counters.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::Incomplete { .. } => "incomplete",
            FrameError::Start(_) => "start",
            FrameError::TooShort(_) => "too_short",
            FrameError::TooLong { .. } => "too_long",
            FrameError::Stop(_) => "stop",
            FrameError::Crc { .. } => "crc",
        }
    }
}

/// The length of the whole frame at the start of `buf`, once all of it is there.
pub fn check(buf: &[u8], max_len: usize) -> Result<usize, FrameError> {
    let need = |needed: usize| FrameError::Incomplete { needed };
    let start: [u8; 2] = buf.get(..2).ok_or(need(2))?.try_into().unwrap_or_default();
    let (length, head) = match start {
        [0x78, 0x78] => (usize::from(*buf.get(2).ok_or(need(3))?), 3),
        [0x79, 0x79] => {
            let field = buf.get(2..4).ok_or(need(4))?;
            (usize::from(u16::from_be_bytes([field[0], field[1]])), 4)
        }
        other => return Err(FrameError::Start(other)),
    };
    if length < MIN_LENGTH {
        return Err(FrameError::TooShort(length));
    }
    let total = head + length + STOP.len();
    if total > max_len {
        return Err(FrameError::TooLong {
            length: total,
            max: max_len,
        });
    }
    let stop = buf.get(total - 2..total).ok_or(need(total))?;
    if stop != STOP {
        return Err(FrameError::Stop([stop[0], stop[1]]));
    }
    Ok(total)
}

/// One whole frame, split into its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// `79 79`, with a two-byte length.
    pub extended: bool,
    pub protocol: u8,
    /// Between the protocol number and the serial number.
    pub content: &'a [u8],
    pub serial: u16,
}

impl<'a> Frame<'a> {
    /// Splits a whole frame (as [`check`] delimited it) and verifies its CRC.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let frame = Self::parse_unchecked(bytes)?;
        let crc_at = bytes.len() - 4;
        let actual = u16::from_be_bytes([bytes[crc_at], bytes[crc_at + 1]]);
        let expected = crc_itu(&bytes[2..crc_at]);
        if actual != expected {
            return Err(FrameError::Crc { expected, actual });
        }
        Ok(frame)
    }

    /// Splits a whole frame without looking at its CRC. For tests that read frames other
    /// software accepts without checking (see `docs/DEVICES.md`); the listener never uses it.
    pub fn parse_unchecked(bytes: &'a [u8]) -> Result<Self, FrameError> {
        let total = check(bytes, usize::MAX)?;
        let bytes = &bytes[..total];
        let extended = bytes[0] == 0x79;
        let head = if extended { 4 } else { 3 };
        let serial_at = total - 6;
        Ok(Frame {
            extended,
            protocol: bytes[head],
            content: &bytes[head + 1..serial_at],
            serial: u16::from_be_bytes([bytes[serial_at], bytes[serial_at + 1]]),
        })
    }
}

/// CRC-ITU as GT06 uses it (the X.25 / IBM-SDLC CRC-16).
pub fn crc_itu(bytes: &[u8]) -> u16 {
    const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_SDLC);
    CRC.checksum(bytes)
}

/// Writes a frame: start bytes, length, protocol, content, serial, CRC, stop bytes. Uses the
/// two-byte length when the content does not fit one.
pub fn encode(protocol: u8, content: &[u8], serial: u16, out: &mut Vec<u8>) {
    encode_in(false, protocol, content, serial, out);
}

/// [`encode`], in the extended framing (`79 79`) when `extended` even if the content is short.
pub fn encode_in(extended: bool, protocol: u8, content: &[u8], serial: u16, out: &mut Vec<u8>) {
    let length = 1 + content.len() + 4;
    let start = out.len();
    match u8::try_from(length) {
        Ok(short) if !extended => out.extend_from_slice(&[0x78, 0x78, short]),
        _ => {
            out.extend_from_slice(&[0x79, 0x79]);
            out.extend_from_slice(&(length.min(usize::from(u16::MAX)) as u16).to_be_bytes());
        }
    }
    out.push(protocol);
    out.extend_from_slice(content);
    out.extend_from_slice(&serial.to_be_bytes());
    let crc = crc_itu(&out[start + 2..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&STOP);
}

/// Cuts a TCP stream into whole frames (CRC not yet checked: a bad CRC costs one frame, a
/// foreign or oversized header the connection).
#[derive(Debug)]
pub struct FrameCodec {
    max_len: usize,
}

impl FrameCodec {
    pub fn new(max_len: usize) -> Self {
        Self { max_len }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

/// Why a GT06 stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("unreadable GT06 stream: {0}")]
    Frame(FrameError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = StreamError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, StreamError> {
        match check(src, self.max_len) {
            Ok(total) => Ok(Some(src.split_to(total))),
            Err(FrameError::Incomplete { needed }) => {
                src.reserve(needed.saturating_sub(src.len()));
                Ok(None)
            }
            Err(error) => Err(StreamError::Frame(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_login_matches_the_concox_example() {
        // The login example of Concox's GT06 protocol document: 78 78 0D 01 ... 00 01 8C DD 0D 0A.
        let frame = hex::decode("78780d01012345678901234500018cdd0d0a").expect("hex");
        let parsed = Frame::parse(&frame).expect("valid frame");
        assert_eq!(parsed.protocol, 0x01);
        assert_eq!(parsed.serial, 1);
        assert_eq!(parsed.content.len(), 8);
    }

    #[test]
    fn refuses_oversized_and_foreign_headers_before_buffering() {
        assert_eq!(
            check(&[0x79, 0x79, 0xff, 0xff], 1024),
            Err(FrameError::TooLong {
                length: 65541,
                max: 1024
            })
        );
        assert_eq!(check(b"GET /", 1024), Err(FrameError::Start(*b"GE")));
        assert_eq!(
            check(&[0x78, 0x78, 0x04], 1024),
            Err(FrameError::TooShort(4))
        );
        assert_eq!(
            check(&[0x78, 0x78, 0x05, 0x01], 1024),
            Err(FrameError::Incomplete { needed: 10 })
        );
    }
}
