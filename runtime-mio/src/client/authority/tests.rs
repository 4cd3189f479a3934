//! The frame filter: authority rewriting, frame handling, limits, and the fuzz seeds.

use std::io;

use quickcheck::{QuickCheck, TestResult};

use super::*;

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = frame_head(payload.len(), kind, flags, stream_id).to_vec();
    out.extend_from_slice(payload);
    out
}

fn literal(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    hpack::encode_literal(
        block,
        Field {
            name,
            value,
            never_indexed: false,
        },
    );
}

/// Runs `input` (after the preface) through a filter in reads of `read_bytes`.
fn run(filter: &mut AuthorityFilter, input: &[u8], read_bytes: usize) -> io::Result<Vec<u8>> {
    let stream: Vec<u8> = H2_PREFACE.iter().chain(input).copied().collect();
    let mut at = 0;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_bytes];
    loop {
        let n = filter.read(&mut buf, |into| {
            let n = into.len().min(stream.len() - at);
            into[..n].copy_from_slice(&stream[at..at + n]);
            at += n;
            Ok(n)
        })?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn filtered(input: &[u8], read_bytes: usize) -> io::Result<Vec<u8>> {
    let mut out = run(
        &mut AuthorityFilter::new(FilterLimits::default()),
        input,
        read_bytes,
    )?;
    assert_eq!(&out[..H2_PREFACE.len()], H2_PREFACE);
    out.drain(..H2_PREFACE.len());
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    kind: u8,
    flags: u8,
    stream_id: u32,
    payload: Vec<u8>,
}

fn parse(mut bytes: &[u8]) -> Vec<Parsed> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        frames.push(Parsed {
            kind: bytes[3],
            flags: bytes[4],
            stream_id: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]),
            payload: bytes[9..9 + len].to_vec(),
        });
        bytes = &bytes[9 + len..];
    }
    frames
}

/// Decodes a re-encoded block with no dynamic table at all.
fn fields(block: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    Decoder::new(0)
        .decode(block, 1 << 20, |f| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            out.push((text(f.name), text(f.value)));
        })
        .expect("re-encoded block decodes without a table");
    out
}

fn request_block(authority: &[u8]) -> Vec<u8> {
    // :method POST, :scheme http (indexed), then :authority with incremental indexing.
    let mut block = vec![0x83, 0x86, 0x41, authority.len() as u8];
    block.extend_from_slice(authority);
    literal(&mut block, b":path", b"/etcdserverpb.Maintenance/Status");
    block
}

#[test]
fn grpc_authority_rewrite_rules() {
    let a = b":authority".as_slice();
    assert_eq!(rewrite_authority(a, b"http://x:1"), Some(b"x:1".as_slice()));
    assert_eq!(
        rewrite_authority(a, b"https://127.0.0.1:2379/some/path?q"),
        Some(b"127.0.0.1:2379".as_slice())
    );
    assert_eq!(
        rewrite_authority(a, b"dns:///127.0.0.1:2379"),
        Some(b"127.0.0.1:2379".as_slice())
    );
    assert_eq!(rewrite_authority(a, b"http://"), Some(b"".as_slice()));
    assert_eq!(rewrite_authority(a, b"127.0.0.1:2379"), None);
    assert_eq!(rewrite_authority(b"host", b"http://x:1"), None);
}

#[test]
fn grpc_authority_scheme_is_stripped_also_through_the_dynamic_table() {
    let mut input = frame(
        KIND_HEADERS,
        FLAG_END_HEADERS,
        1,
        &request_block(b"http://x:1"),
    );
    input.extend(frame(0x0, FLAG_END_STREAM, 1, b"\0\0\0\0\0"));
    // Stream 3 names the authority by dynamic index 62, as grpc-go does after the first call.
    let mut second = vec![0x83, 0x86, 0xbe];
    literal(&mut second, b":path", b"/etcdserverpb.KV/Range");
    input.extend(frame(
        KIND_HEADERS,
        FLAG_END_HEADERS | FLAG_END_STREAM,
        3,
        &second,
    ));
    for read_bytes in [1, 7, 64, 4096] {
        let frames = parse(&filtered(&input, read_bytes).expect("filter"));
        assert_eq!(frames.len(), 3);
        assert_eq!(
            (frames[0].kind, frames[0].flags),
            (KIND_HEADERS, FLAG_END_HEADERS)
        );
        let want = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", "x:1"),
            (":path", "/etcdserverpb.Maintenance/Status"),
        ];
        let want: Vec<_> = want.iter().map(|&(n, v)| (n.into(), v.into())).collect();
        assert_eq!(fields(&frames[0].payload), want);
        assert_eq!(frames[1].payload, b"\0\0\0\0\0");
        assert_eq!((frames[2].flags, frames[2].stream_id), (0x5, 3));
        assert_eq!(
            fields(&frames[2].payload)[2],
            (":authority".into(), "x:1".into())
        );
    }
}

#[test]
fn grpc_authority_large_block_is_split_into_continuations() {
    let mut block = request_block(b"127.0.0.1:2379");
    let big = vec![b'v'; 40_000];
    literal(&mut block, b"x-big", &big);
    // In: HEADERS (END_STREAM) + two CONTINUATIONs, padded and with priority.
    let (a, rest) = block.split_at(100);
    let (b, c) = rest.split_at(20_000);
    let mut first = vec![3u8];
    first.extend_from_slice(&[0, 0, 0, 1, 16]);
    first.extend_from_slice(a);
    first.extend_from_slice(&[0, 0, 0]);
    let mut input = frame(
        KIND_HEADERS,
        FLAG_END_STREAM | FLAG_PADDED | FLAG_PRIORITY,
        5,
        &first,
    );
    input.extend(frame(KIND_CONTINUATION, 0, 5, b));
    input.extend(frame(KIND_CONTINUATION, FLAG_END_HEADERS, 5, c));
    let frames = parse(&filtered(&input, 8192).expect("filter"));
    assert_eq!(frames.len(), 3);
    let kinds: Vec<_> = frames
        .iter()
        .map(|f| (f.kind, f.flags, f.stream_id))
        .collect();
    assert_eq!(
        kinds,
        [
            (KIND_HEADERS, FLAG_END_STREAM, 5),
            (KIND_CONTINUATION, 0, 5),
            (KIND_CONTINUATION, FLAG_END_HEADERS, 5)
        ]
    );
    assert!(frames.iter().all(|f| f.payload.len() <= 16 << 10));
    let joined: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
    let got = fields(&joined);
    assert_eq!(got[2], (":authority".into(), "127.0.0.1:2379".into()));
    assert_eq!(got[4].1.len(), 40_000);
}

#[test]
fn grpc_authority_other_frames_pass_in_place() {
    let mut input = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    input.extend(frame(0x0, 0, 1, &vec![7u8; 30_000]));
    input.extend(frame(0x8, 0, 0, &[0, 1, 0, 0]));
    input.extend(frame(0x6, 0, 0, &[1; 8]));
    let mut filter = AuthorityFilter::new(FilterLimits::default());
    let mut stream: Vec<u8> = H2_PREFACE.iter().chain(&input).copied().collect();
    let len = stream.len();
    assert_eq!(filter.process(&mut stream), Ok((len, len)));
    assert!(!filter.has_pending());
    assert_eq!(&stream[H2_PREFACE.len()..], input);
    assert_eq!(filtered(&input, 5).expect("filter"), input);
}

#[test]
fn grpc_authority_size_updates_are_not_forwarded() {
    let mut block = vec![0x3f, 0x45, 0x83];
    literal(&mut block, b":path", b"/x");
    let input = frame(KIND_HEADERS, FLAG_END_HEADERS, 1, &block);
    let frames = parse(&filtered(&input, 64).expect("filter"));
    assert_eq!(
        frames[0].payload[0], 0x02,
        "starts with :method as a literal"
    );
    assert_eq!(fields(&frames[0].payload).len(), 2);
}

#[test]
fn grpc_authority_bad_input_is_an_error_every_time() {
    let cases: Vec<(Vec<u8>, FilterError)> = vec![
        (
            frame(KIND_CONTINUATION, FLAG_END_HEADERS, 1, &[0x82]),
            FilterError::UnexpectedContinuation { stream_id: 1 },
        ),
        (
            [frame(KIND_HEADERS, 0, 1, &[0x82]), frame(0x0, 0, 1, b"x")].concat(),
            FilterError::ExpectedContinuation { kind: 0 },
        ),
        (
            frame(KIND_HEADERS, FLAG_END_HEADERS | FLAG_PADDED, 1, &[9, 0x82]),
            FilterError::BadPadding,
        ),
        (
            frame(KIND_HEADERS, FLAG_END_HEADERS, 1, &[0xbe]),
            FilterError::Hpack(HpackError::BadIndex { index: 62 }),
        ),
        (
            frame_head(70_000, KIND_HEADERS, 0, 1).to_vec(),
            FilterError::HeaderBlockTooLarge {
                bytes_max: 64 << 10,
            },
        ),
        (
            [frame(KIND_HEADERS, 0, 1, &[])]
                .into_iter()
                .chain((0..17).map(|_| frame(KIND_CONTINUATION, 0, 1, &[])))
                .collect::<Vec<_>>()
                .concat(),
            FilterError::TooManyContinuations { frames_max: 16 },
        ),
    ];
    for (input, want) in cases {
        let mut filter = AuthorityFilter::new(FilterLimits::default());
        let err = run(&mut filter, &input, 3).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), want.to_string());
        assert_eq!(filter.process(&mut [0u8; 4]), Err(want));
    }
}

#[test]
fn grpc_authority_amplified_blocks_are_held_back() {
    // One entry of ~4000 bytes, then blocks of a single byte each naming it: tiny input,
    // large output. The filter must keep its pending output bounded.
    let mut input = Vec::new();
    let mut first = vec![0x40, 0x01, b'x', 0x7f, 0xa1, 0x1e];
    first.extend_from_slice(&[b'v'; 4000]);
    input.extend(frame(KIND_HEADERS, FLAG_END_HEADERS, 1, &first));
    for i in 0..400u32 {
        input.extend(frame(KIND_HEADERS, FLAG_END_HEADERS, 3 + 2 * i, &[0xbe; 8]));
    }
    let limits = FilterLimits::default();
    let mut filter = AuthorityFilter::new(limits);
    let stream: Vec<u8> = H2_PREFACE.iter().chain(&input).copied().collect();
    let mut at = 0;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = filter
            .read(&mut buf, |into| {
                let n = into.len().min(stream.len() - at);
                into[..n].copy_from_slice(&stream[at..at + n]);
                at += n;
                Ok(n)
            })
            .expect("read");
        assert!(filter.pending.len() <= limits.pending_bytes_max + (64 << 10) + (1 << 16));
        if n == 0 {
            break;
        }
        total += n;
    }
    let frames =
        parse(&run(&mut AuthorityFilter::new(limits), &input, 1 << 16).expect("run")[24..]);
    let headers = frames.iter().filter(|f| f.kind == KIND_HEADERS).count();
    assert_eq!(headers, 401);
    assert!(total > 400 * 8 * 4000);
}

#[test]
fn grpc_hpack_decode_never_panics() {
    fn prop(block: Vec<u8>, table_bytes: u16) -> TestResult {
        let mut decoder = Decoder::new(usize::from(table_bytes));
        let _ = decoder.decode(&block, 1 << 12, |_| {});
        let _ = decoder.decode(&block, 1 << 12, |_| {});
        TestResult::passed()
    }
    QuickCheck::new()
        .tests(2000)
        .quickcheck(prop as fn(Vec<u8>, u16) -> TestResult);
}

#[test]
fn grpc_hpack_fuzz_entry_never_panics_on_arbitrary_bytes() {
    fn prop(data: Vec<u8>) -> bool {
        fuzz_hpack(&data);
        true
    }
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
}

#[test]
fn grpc_hpack_fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/grpc_hpack");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed dir") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        fuzz_hpack(&data);
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} seeds in {}", dir.display());
}
