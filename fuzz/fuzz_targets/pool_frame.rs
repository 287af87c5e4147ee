//! Fuzzes the pool (TCP 8011) frame decoder: arbitrary bytes as a stream cut into frames with
//! a small maximum frame size, and as one type byte plus payload; every frame that decodes must
//! encode again and decode to the same frame.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use palaver_core::pool::{codec, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::new(4096);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        let bytes = codec::encode(&frame, 1 << 20).expect("a decoded frame encodes");
        assert_eq!(codec::decode(bytes[4], &bytes[5..]), Ok(frame));
    }
    if let Some((&ty, payload)) = data.split_first() {
        let _ = codec::decode(ty, payload);
    }
});
