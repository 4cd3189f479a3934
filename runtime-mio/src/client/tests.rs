//! Unit tests of the pieces: framing, status encoding, sniffing and HTTP/1 parsing.

use super::framing::{FrameError, MessageDecoder, encode};
use super::http1::{Head, Parsed, Sniffed, encode_response, parse_head, sniff};
use super::status::{Code, Status, percent_decode, percent_encode};

#[test]
fn framing_round_trip_across_chunk_boundaries() {
    let mut wire = encode(b"hello").to_vec();
    wire.extend_from_slice(&encode(b""));
    wire.extend_from_slice(&encode(&[7u8; 300]));
    for chunk_len in [1, 2, 5, 6, 64, wire.len()] {
        let mut decoder = MessageDecoder::new(1024);
        let mut got = Vec::new();
        for chunk in wire.chunks(chunk_len) {
            decoder.push(chunk);
            while let Some(m) = decoder.next_message().expect("valid") {
                got.push(m);
            }
        }
        decoder.finish().expect("complete");
        assert_eq!(got.len(), 3);
        assert_eq!(&got[0][..], b"hello");
        assert!(got[1].is_empty());
        assert_eq!(&got[2][..], &[7u8; 300][..]);
    }
}

#[test]
fn framing_refuses_before_buffering_the_body() {
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[0, 0, 0, 0, 11]);
    assert_eq!(
        decoder.next_message(),
        Err(FrameError::TooLarge {
            len: 11,
            len_max: 10
        })
    );
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[0, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decoder.next_message(),
        Err(FrameError::TooLarge { .. })
    ));
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[0, 0, 0, 0, 10]);
    assert_eq!(decoder.next_message(), Ok(None));
}

#[test]
fn framing_flags_and_truncation() {
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[1, 0, 0, 0, 1, 0]);
    assert_eq!(decoder.next_message(), Err(FrameError::Compressed));
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[2, 0, 0, 0, 1, 0]);
    assert_eq!(decoder.next_message(), Err(FrameError::BadFlag(2)));
    let mut decoder = MessageDecoder::new(10);
    decoder.push(&[0, 0, 0]);
    assert_eq!(decoder.next_message(), Ok(None));
    assert_eq!(decoder.finish(), Err(FrameError::Truncated));
    assert_eq!(&encode(b"ab")[..], &[0, 0, 0, 0, 2, b'a', b'b']);
}

#[test]
fn status_message_percent_encoding_follows_the_spec() {
    assert_eq!(
        percent_encode("etcdserver: request is too large"),
        "etcdserver: request is too large"
    );
    assert_eq!(percent_encode("50% done\n"), "50%25 done%0A");
    assert_eq!(percent_encode("ключ"), "%D0%BA%D0%BB%D1%8E%D1%87");
    for s in ["", "plain", "50% done\n", "ключ", "%", "%4", "%zz"] {
        assert_eq!(percent_decode(&percent_encode(s)), s);
    }
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
    let status = Status::new(Code::ResourceExhausted, "a\tb");
    assert_eq!(status.encoded_message(), "a%09b");
    assert_eq!(Status::ok().code().as_u32(), 0);
}

#[test]
fn codes_map_both_ways() {
    for n in 0..=16 {
        assert_eq!(Code::from_u32(n).as_u32(), n);
    }
    assert_eq!(Code::from_u32(17), Code::Unknown);
    assert_eq!(Code::from_u32(u32::MAX), Code::Unknown);
    assert_eq!(Status::from_code_u32(5, "x").code(), Code::NotFound);
}

#[test]
fn sniffing_tells_h2_http1_and_garbage_apart() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_eq!(sniff(preface), Sniffed::H2);
    for n in 1..preface.len() {
        assert_eq!(sniff(&preface[..n]), Sniffed::NeedMore, "{n}");
    }
    assert_eq!(sniff(b"GET /health HTTP/1.1"), Sniffed::Http1);
    assert_eq!(sniff(b"POST "), Sniffed::Http1);
    assert_eq!(sniff(b"PRI / HTTP/1.1"), Sniffed::Http1);
    assert_eq!(sniff(b"PO"), Sniffed::NeedMore);
    assert_eq!(sniff(b"\x16\x03\x01"), Sniffed::Garbage);
    assert_eq!(sniff(b" GET"), Sniffed::Garbage);
    assert_eq!(sniff(b"get /"), Sniffed::Garbage);
    assert_eq!(sniff(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"), Sniffed::Garbage);
}

#[test]
fn http1_head_parsing() {
    assert_eq!(
        parse_head(b"GET /health HTTP/1.1\r\nHost: a\r\n"),
        Parsed::Partial
    );
    let want = Head {
        method: "GET".into(),
        path: "/health".into(),
        head_bytes: 33,
        content_length: 0,
        expects_continue: false,
        token: None,
    };
    assert_eq!(
        parse_head(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"),
        Parsed::Head(want)
    );
    // etcd's gateway takes the auth token from the Authorization header.
    let Parsed::Head(with_token) =
        parse_head(b"POST /v3/kv/range HTTP/1.1\r\nAuthorization: abc.1\r\n\r\n")
    else {
        panic!("a head");
    };
    assert_eq!(with_token.token.as_deref(), Some("abc.1"));
    assert!(matches!(
        parse_head(b"GET /x HTTP/1.0\r\n\r\n"),
        Parsed::Head(_)
    ));
    let post = b"POST /v3/kv/put HTTP/1.1\r\ncontent-length:  12\r\n\r\n{}";
    let Parsed::Head(head) = parse_head(post) else {
        panic!("a POST head");
    };
    assert_eq!((head.head_bytes, head.content_length), (post.len() - 2, 12));
    for bad in [
        &b"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n"[..],
        b"POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert!(matches!(parse_head(bad), Parsed::Invalid(_)), "{bad:?}");
    }
    assert!(matches!(
        parse_head(b"GET health HTTP/1.1\r\n\r\n"),
        Parsed::Invalid(_)
    ));
    assert!(matches!(
        parse_head(b"GET /a b HTTP/1.1\r\n\r\n"),
        Parsed::Invalid(_)
    ));
    assert!(matches!(
        parse_head(b"GET /a HTTP/2\r\n\r\n"),
        Parsed::Invalid(_)
    ));
    assert!(matches!(
        parse_head(b"GET /a HTTP/1.1\r\nno colon\r\n\r\n"),
        Parsed::Invalid(_)
    ));
    assert!(matches!(
        parse_head(b"GET /\xff HTTP/1.1\r\n\r\n"),
        Parsed::Invalid(_)
    ));
    let mut crowded = b"GET /a HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        crowded.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
    }
    crowded.extend_from_slice(b"\r\n");
    assert_eq!(
        parse_head(&crowded),
        Parsed::Invalid("too many header lines")
    );
    let response = encode_response(200, "text/plain", b"ok");
    assert_eq!(
        &response[..],
        &b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"[..]
    );
}
