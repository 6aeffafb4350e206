//! A TCP byte stream, cut into reads at places the input chooses: the framing must never panic,
//! never buffer past a frame's declared size, and hand out only whole frames that `check` accepts.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tagwatch_gateway::framing::FrameCodec;
use tagwatch_gateway::wire;
use tokio_util::codec::Decoder;

const MAX_BODY: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the size of each read (1..=256 bytes).
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step) + 1;
    let mut codec = FrameCodec::new(MAX_BODY);
    let mut buffer = BytesMut::new();
    for chunk in stream.chunks(step) {
        buffer.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some((header, frame))) => {
                    assert_eq!(frame.len(), header.frame_len());
                    assert!(usize::from(header.length) <= MAX_BODY);
                    assert!(wire::check(&frame, MAX_BODY).is_ok());
                }
                Ok(None) => break,
                // The connection would be closed here.
                Err(_) => return,
            }
        }
    }
});
