use bytes::Bytes;

use super::harness::{Net, RawPeer, TOKEN, ack_status, config, listener, raw_frame};
use super::plain::exchange;
use super::tls::{peer_tls, pki};
use crate::peer::PeerConfig;
use crate::peer::wire::HandshakeStatus;

const BIG_FRAMES: usize = 24;
const BIG_FRAME_BYTES: usize = 1 << 20;

fn big(k: usize) -> Bytes {
    let mut frame = vec![k as u8; BIG_FRAME_BYTES - k];
    frame[1..9].copy_from_slice(&(k as u64).to_le_bytes());
    frame[0] = crate::peer::FrameKind::Raft.tag();
    Bytes::from(frame)
}

/// Many large frames: the kernel and rustls buffers fill, writes are partial and resume on
/// writability; every frame arrives intact and in order.
fn big_frames(config: impl Fn(u64) -> PeerConfig) {
    let ids = [1, 2];
    let (mut net, _) = Net::cluster(&ids, config);
    for k in 0..BIG_FRAMES {
        assert!(net.transport(1).send(2, big(k)));
        assert!(net.transport(2).send(1, big(k)));
    }
    net.run_until("big frames both ways", |net| {
        net.member(2).frames_from(1).len() == BIG_FRAMES
            && net.member(1).frames_from(2).len() == BIG_FRAMES
    });
    for (to, from) in [(2, 1), (1, 2)] {
        let frames = net.member(to).frames_from(from);
        assert!(frames.iter().enumerate().all(|(k, f)| *f == big(k)));
    }
}

fn roomy(id: u64) -> PeerConfig {
    config(id)
        .with_frame_bytes_max(BIG_FRAME_BYTES)
        .with_send_queue_bytes_max(BIG_FRAMES * (BIG_FRAME_BYTES + 4))
}

#[test]
fn big_frames_plaintext() {
    big_frames(roomy);
}

#[test]
fn big_frames_tls() {
    let tls = peer_tls(&pki());
    big_frames(|id| roomy(id).with_tls(tls.clone()));
}

#[test]
fn small_read_batches_resume_from_the_timer() {
    let ids = [1, 2, 3];
    let (mut net, _) = Net::cluster(&ids, |id| config(id).with_read_batch_bytes_max(512));
    exchange(&mut net, &ids);
}

#[test]
fn inbound_connections_are_bounded() {
    let mut net = Net::new();
    let addr = net.start(
        config(3).with_connections_max(2),
        listener(),
        &[(1, "127.0.0.1:9".parse().unwrap())],
    );
    let mut first = RawPeer::connect(addr);
    let mut second = RawPeer::connect(addr);
    net.run_for(std::time::Duration::from_millis(50));
    let mut third = RawPeer::connect(addr);
    net.run_until("third refused", |_| third.is_closed());
    assert_eq!(net.transport(3).stats().connections_refused(), 1);
    assert!(!first.is_closed() && !second.is_closed());
    // A slot frees up when a connection goes; a real peer then gets in.
    drop(second);
    net.run_until("slot freed", |net| {
        net.transport(3).stats().handshakes_rejected() == 1
    });
    let mut peer = RawPeer::connect(addr);
    peer.hello(TOKEN, 1, 3);
    let ack = raw_frame(&mut net, &mut peer, "ack");
    assert_eq!(ack_status(&ack), HandshakeStatus::Accepted);
    assert!(net.transport(3).is_connected(1));
    assert!(!first.is_closed());
}
