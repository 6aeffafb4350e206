//! GT06 bytes from a device, as the listener reads them: a TCP stream cut into frames, each
//! frame's CRC checked (and also skipped, so the decoder sees content whatever its CRC), decoded,
//! and acknowledged. Nothing may panic, and a frame read must lie within the bytes given.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tagwatch_devices::gt06::frame::FrameCodec;
use tagwatch_devices::gt06::{decode, reply, Frame};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = FrameCodec::default();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        assert!(frame.len() <= data.len());
        if let Ok(parsed) = Frame::parse_unchecked(&frame) {
            let _ = decode(&parsed);
            let _ = reply::ack(&parsed);
        }
        if let Ok(parsed) = Frame::parse(&frame) {
            let _ = decode(&parsed);
        }
    }
});
