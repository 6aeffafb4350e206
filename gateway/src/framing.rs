//! # TCP framing: a byte stream cut into whole TWB/1 frames.
//!
//! Pure (no I/O of its own): a `tokio-util` decoder over [`wire::check`], so an oversized or
//! foreign header is an error before any of its body is buffered. The gateway's TCP listener reads
//! stations with it, and the simulator's stations read their ACKs with it.

use crate::wire::{self, Header, WireError};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Splits a TCP byte stream into whole frames (`check` first: an oversized or foreign header is
/// an error before any of its body is buffered).
#[derive(Debug)]
pub struct FrameCodec {
    max_body: usize,
}

impl FrameCodec {
    pub fn new(max_body: usize) -> Self {
        Self { max_body }
    }
}

/// Why a TCP stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("unparseable stream: {0}")]
    Wire(WireError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for FrameCodec {
    type Item = (Header, BytesMut);
    type Error = StreamError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match wire::check(src, self.max_body) {
            Ok(header) => Ok(Some((header, src.split_to(header.frame_len())))),
            Err(WireError::Incomplete { needed, have }) => {
                src.reserve(needed.saturating_sub(have));
                Ok(None)
            }
            Err(error) => Err(StreamError::Wire(error)),
        }
    }
}
