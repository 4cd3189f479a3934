//! RFC 7541 Appendix C examples, limits, and the encoder's round trip.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect()
}

fn decode(decoder: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, HpackError> {
    let mut fields = Vec::new();
    decoder.decode(block, 1 << 16, |f| {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        fields.push((text(f.name), text(f.value)));
    })?;
    Ok(fields)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|&(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn table(decoder: &Decoder) -> Vec<(String, String)> {
    (0..)
        .map_while(|i| decoder.table_entry(i))
        .map(|(n, v)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(n), text(v))
        })
        .collect()
}

/// C.3 (plain strings) and C.4 (Huffman) carry the same three requests.
fn requests(blocks: [&str; 3]) {
    let mut decoder = Decoder::new(4096);
    let first = pairs(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ]);
    assert_eq!(decode(&mut decoder, &hex(blocks[0])), Ok(first));
    assert_eq!(table(&decoder), pairs(&[(":authority", "www.example.com")]));
    assert_eq!(decoder.table_bytes(), 57);

    let second = pairs(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ]);
    assert_eq!(decode(&mut decoder, &hex(blocks[1])), Ok(second));
    assert_eq!(decoder.table_bytes(), 110);

    let third = pairs(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ]);
    assert_eq!(decode(&mut decoder, &hex(blocks[2])), Ok(third));
    let want = pairs(&[
        ("custom-key", "custom-value"),
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ]);
    assert_eq!(table(&decoder), want);
    assert_eq!(decoder.table_bytes(), 164);
}

#[test]
fn grpc_hpack_rfc7541_c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn grpc_hpack_rfc7541_c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

#[test]
fn grpc_hpack_rfc7541_c1_integers() {
    let mut out = Vec::new();
    encode_int(&mut out, 10, 5, 0);
    assert_eq!(out, [0x0a]);
    out.clear();
    encode_int(&mut out, 1337, 5, 0);
    assert_eq!(out, [0x1f, 0x9a, 0x0a]);
    let mut pos = 0;
    assert_eq!(decode_int(&out, &mut pos, 5), Ok(1337));
    assert_eq!(pos, 3);
    let mut pos = 0;
    assert_eq!(
        decode_int(&[0x1f, 0x9a], &mut pos, 5),
        Err(HpackError::Truncated)
    );
    let mut pos = 0;
    let huge = [0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(
        decode_int(&huge, &mut pos, 5),
        Err(HpackError::IntegerOverflow)
    );
    let mut pos = 0;
    let long_zeros = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(
        decode_int(&long_zeros, &mut pos, 5),
        Err(HpackError::IntegerOverflow)
    );
}

#[test]
fn grpc_hpack_table_size_updates_evict_and_are_bounded() {
    let mut decoder = Decoder::new(4096);
    decode(
        &mut decoder,
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    )
    .expect("c3");
    assert_eq!(decoder.table_bytes(), 57);
    // Size update to 0 (0x20) empties the table, then to 100 (0x3f 0x45) at the block start.
    assert_eq!(
        decode(&mut decoder, &[0x20, 0x3f, 0x45, 0x82]),
        Ok(pairs(&[(":method", "GET")]))
    );
    assert_eq!(decoder.table_bytes(), 0);
    // Index 62 is gone now.
    assert_eq!(
        decode(&mut decoder, &[0xbe]),
        Err(HpackError::BadIndex { index: 62 })
    );
    // An entry larger than the table empties it and is not added.
    let mut block = vec![0x40, 0x01, b'x', 0x7f, 0x00];
    block.extend_from_slice(&[b'v'; 127]);
    let fields = decode(&mut decoder, &block).expect("literal");
    assert_eq!(fields[0].1.len(), 127);
    assert_eq!(decoder.table_bytes(), 0);
    // Above the advertised 4096: refused.
    let mut decoder = Decoder::new(4096);
    let update = [0x3f, 0xe2, 0x1f];
    assert_eq!(
        decode(&mut decoder, &update),
        Err(HpackError::TableSizeTooLarge {
            bytes: 4097,
            bytes_max: 4096
        })
    );
    // After a field: refused.
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x82, 0x20]),
        Err(HpackError::LateTableSizeUpdate)
    );
}

#[test]
fn grpc_hpack_refuses_bad_indexes_and_truncation() {
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x80]),
        Err(HpackError::BadIndex { index: 0 })
    );
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0xbe]),
        Err(HpackError::BadIndex { index: 62 })
    );
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x04, 0x05, b'a']),
        Err(HpackError::Truncated)
    );
    assert_eq!(
        decode(&mut Decoder::new(4096), &[0x00, 0x01]),
        Err(HpackError::Truncated)
    );
    // Huffman string with EOS inside.
    let eos = [0x04, 0x84, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(
        decode(&mut Decoder::new(4096), &eos),
        Err(HpackError::Huffman(HuffmanError::Eos))
    );
}

#[test]
fn grpc_hpack_header_list_limit() {
    let mut block = vec![0x04, 0x7f, 0x81, 0x01];
    block.extend_from_slice(&[b'/'; 256]);
    let mut decoder = Decoder::new(4096);
    let result = decoder.decode(&block, 200, |_| {});
    assert_eq!(
        result,
        Err(HpackError::HeaderListTooLarge { bytes_max: 200 })
    );
    let mut decoder = Decoder::new(4096);
    assert_eq!(decoder.decode(&block, 300, |_| {}), Ok(()));
}

#[test]
fn grpc_hpack_literals_round_trip_without_table_use() {
    let fields = [
        (
            b":authority".as_slice(),
            b"127.0.0.1:2379".as_slice(),
            false,
        ),
        (b":path", b"/etcdserverpb.Maintenance/Status", false),
        (b"x-custom", b"", false),
        (b"authorization", b"secret", true),
        (b"long", &[b'z'; 300], false),
    ];
    let mut block = Vec::new();
    for &(name, value, never_indexed) in &fields {
        let before = block.len();
        encode_literal(
            &mut block,
            Field {
                name,
                value,
                never_indexed,
            },
        );
        assert!(block.len() - before <= name.len() + value.len() + LITERAL_OVERHEAD_BYTES_MAX);
    }
    let mut decoder = Decoder::new(4096);
    let mut got = Vec::new();
    decoder
        .decode(&block, 1 << 16, |f| {
            got.push((f.name.to_vec(), f.value.to_vec(), f.never_indexed));
        })
        .expect("decode");
    let want: Vec<_> = fields
        .iter()
        .map(|&(n, v, s)| (n.to_vec(), v.to_vec(), s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(decoder.table_bytes(), 0);
}
