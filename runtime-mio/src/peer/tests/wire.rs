use std::io::{self, IoSlice};

use bytes::{Bytes, BytesMut};
use quickcheck::quickcheck;

use crate::peer::wire::{
    self, FrameTooLarge, HANDSHAKE_FRAME_BYTES_MAX, HandshakeStatus, SendQueue, split_frame,
};

#[test]
fn frames_split_only_when_complete_and_bounded() {
    let mut buf = BytesMut::from(&[3u8, 0, 0, 0, b'a', b'b'][..]);
    assert_eq!(split_frame(&mut buf, 10), Ok(None));
    buf.extend_from_slice(&[b'c', 0, 0, 0, 0, 2]);
    assert_eq!(
        split_frame(&mut buf, 10),
        Ok(Some(Bytes::from_static(b"abc")))
    );
    assert_eq!(split_frame(&mut buf, 10), Ok(Some(Bytes::new())));
    assert_eq!(split_frame(&mut buf, 10), Ok(None));
    let mut big = BytesMut::from(&[11u8, 0, 0, 0][..]);
    assert_eq!(
        split_frame(&mut big, 10),
        Err(FrameTooLarge { bytes: 11, max: 10 })
    );
}

#[test]
fn handshake_round_trips() {
    let hello = wire::encode_hello(b"token", 1, 2);
    assert!(hello.len() <= HANDSHAKE_FRAME_BYTES_MAX);
    let decoded = wire::decode_hello(&hello).unwrap();
    assert_eq!(
        (
            decoded.versions,
            &decoded.cluster_token[..],
            decoded.from,
            decoded.to
        ),
        (
            (wire::PROTOCOL_VERSION_MIN, wire::PROTOCOL_VERSION_MAX),
            &b"token"[..],
            1,
            2
        )
    );
    let longest = wire::encode_hello(&[b't'; 255], u64::MAX, 0);
    assert_eq!(longest.len(), HANDSHAKE_FRAME_BYTES_MAX);
    for status in [
        HandshakeStatus::Accepted,
        HandshakeStatus::ClusterTokenMismatch,
        HandshakeStatus::Other(77),
    ] {
        let ack = wire::decode_ack(&wire::encode_ack(7, status, 9)).unwrap();
        assert_eq!((ack.version, ack.status, ack.from), (7, status, 9));
    }
    assert!(wire::decode_hello(&hello.slice(..hello.len() - 1)).is_err());
    assert!(wire::decode_ack(&hello).is_err());
}

/// A hello of the first protocol: one version (1), then the token and both ids.
pub(super) fn first_protocol_hello(token: &[u8], from: u64, to: u64) -> Vec<u8> {
    let mut out = b"TALLYHLO".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(token.len() as u32).to_le_bytes());
    out.extend_from_slice(token);
    out.extend_from_slice(&from.to_le_bytes());
    out.extend_from_slice(&to.to_le_bytes());
    out
}

#[test]
fn the_highest_common_version_is_spoken_and_disjoint_ranges_are_refused() {
    let (min, max) = (wire::PROTOCOL_VERSION_MIN, wire::PROTOCOL_VERSION_MAX);
    assert_eq!(wire::common_version((min, max)), Some(max));
    assert_eq!(wire::common_version((1, max + 5)), Some(max));
    assert_eq!(wire::common_version((max + 1, max + 3)), None);
    assert_eq!(wire::common_version((0, min - 1)), None);
    // The first protocol's hello reads as the range 1..=1, which this release does not speak.
    let first = wire::decode_hello(&Bytes::from(first_protocol_hello(b"t", 1, 2))).unwrap();
    assert_eq!(first.versions, (1, 1));
    assert_eq!(wire::common_version(first.versions), None);
    // A range that ends below its start is not a hello.
    let mut reversed = b"TALLYHLO".to_vec();
    reversed.extend_from_slice(&5u32.to_le_bytes());
    reversed.extend_from_slice(&3u32.to_le_bytes());
    assert!(wire::decode_hello(&Bytes::from(reversed)).is_err());
}

quickcheck! {
    fn decoders_never_panic(data: Vec<u8>) -> bool {
        let bytes = Bytes::from(data.clone());
        let _ = wire::decode_hello(&bytes);
        let _ = wire::decode_ack(&bytes);
        // Also with a valid magic in front, to get past the first check.
        let mut hello = b"TALLYHLO".to_vec();
        hello.extend_from_slice(&data);
        let _ = wire::decode_hello(&Bytes::from(hello));
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(_)) = split_frame(&mut buf, 64) {}
        true
    }

    fn send_queue_survives_any_short_writes(sizes: Vec<u8>, cuts: Vec<u8>) -> bool {
        let mut queue = SendQueue::new(1 << 20);
        let mut expected = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let payload = vec![i as u8; usize::from(*size)];
            expected.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            expected.extend_from_slice(&payload);
            assert!(queue.push(Bytes::from(payload)));
        }
        let mut written = Vec::new();
        let mut cuts = cuts.into_iter().cycle();
        while !queue.is_empty() {
            let cut = usize::from(cuts.next().unwrap_or(255)).max(1);
            let result = queue.write_with(|slices: &[IoSlice<'_>]| -> io::Result<usize> {
                let mut left = cut;
                for slice in slices {
                    let take = left.min(slice.len());
                    written.extend_from_slice(&slice[..take]);
                    left -= take;
                }
                Ok(cut - left)
            });
            assert!(result.is_ok());
        }
        queue.bytes() == 0 && written == expected
    }
}

#[test]
fn partial_head_is_discarded_and_the_rest_kept() {
    let mut queue = SendQueue::new(100);
    assert!(queue.push(Bytes::from_static(b"first")));
    assert!(queue.push(Bytes::from_static(b"second")));
    assert_eq!(queue.write_with(|_| Ok(6)).unwrap(), (6, 0));
    queue.discard_partial_head();
    assert_eq!(queue.bytes(), 10);
    let mut out = Vec::new();
    queue
        .write_with(|slices| {
            for s in slices {
                out.extend_from_slice(s);
            }
            Ok(out.len())
        })
        .unwrap();
    assert_eq!(out, b"\x06\x00\x00\x00second");
    assert!(!queue.push(Bytes::from(vec![0u8; 97])), "over bytes_max");
}

quickcheck! {
    fn fuzz_entry_point_never_panics(data: Vec<u8>) -> bool {
        crate::peer::fuzz_peer_wire(&data);
        true
    }
}
