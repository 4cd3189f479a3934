//! The reader on a file laid out by hand, field by field, and on that file damaged in every
//! way a page can be; the writer's files read back by the reader.

use std::io::Cursor;

use super::*;

const P: usize = 512;

fn put_u16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn page_header(f: &mut [u8], id: u64, flags: u16, count: u16) {
    let at = id as usize * P;
    put_u64(f, at, id);
    put_u16(f, at + 8, flags);
    put_u16(f, at + 10, count);
}

/// Meta page `id`: root bucket at page 3, freelist at page 2, `pages` pages, `txid`.
fn meta(f: &mut [u8], id: u64, txid: u64, pages: u64) {
    page_header(f, id, FLAG_META, 0);
    let m = id as usize * P + 16;
    put_u32(f, m, MAGIC);
    put_u32(f, m + 4, VERSION);
    put_u32(f, m + 8, P as u32);
    put_u64(f, m + 16, 3);
    put_u64(f, m + 32, 2);
    put_u64(f, m + 40, pages);
    put_u64(f, m + 48, txid);
    reseal(f, id);
}

/// Recomputes meta page `id`'s checksum after a field was changed.
fn reseal(f: &mut [u8], id: u64) {
    let m = id as usize * P + 16;
    let sum = fnv1a_64(&f[m..m + 56]);
    put_u64(f, m + 56, sum);
}

/// Leaf elements at `at` (a page's start): the element table, then keys and values.
fn leaf_at(f: &mut [u8], at: usize, elements: &[(u32, &[u8], &[u8])]) {
    let mut data = at + 16 + 16 * elements.len();
    for (i, (flags, key, value)) in elements.iter().enumerate() {
        let e = at + 16 + 16 * i;
        put_u32(f, e, *flags);
        put_u32(f, e + 4, (data - e) as u32);
        put_u32(f, e + 8, key.len() as u32);
        put_u32(f, e + 12, value.len() as u32);
        f[data..data + key.len()].copy_from_slice(key);
        f[data + key.len()..data + key.len() + value.len()].copy_from_slice(value);
        data += key.len() + value.len();
    }
}

fn rev(main: u64) -> Vec<u8> {
    let mut k = main.to_be_bytes().to_vec();
    k.push(b'_');
    k.extend_from_slice(&0u64.to_be_bytes());
    k
}

/// The inline `meta` bucket's value: a bucket header with root 0, then a leaf page holding
/// `consistent_index` = 42.
fn inline_meta() -> Vec<u8> {
    let mut v = vec![0u8; 16 + 16 + 16 + 16 + 8];
    let page = 16;
    put_u16(&mut v, page + 8, FLAG_LEAF);
    put_u16(&mut v, page + 10, 1);
    leaf_at(
        &mut v,
        page,
        &[(0, b"consistent_index", &42u64.to_be_bytes())],
    );
    v
}

/// Seven pages of 512 bytes, as bbolt would have them for an etcd-like database:
/// 0 and 1 meta (txids 5 and 4), 2 an empty freelist, 3 the root bucket's leaf (`key` at page
/// 4, `meta` inline), 4 a branch over leaves 5 (revisions 2 and 3) and 6 (a tombstone at 4).
fn hand_file() -> Vec<u8> {
    let mut f = vec![0u8; 7 * P];
    meta(&mut f, 0, 5, 7);
    meta(&mut f, 1, 4, 7);
    page_header(&mut f, 2, FLAG_FREELIST, 0);
    page_header(&mut f, 3, FLAG_LEAF, 2);
    let mut key_bucket = vec![0u8; 16];
    key_bucket[..8].copy_from_slice(&4u64.to_le_bytes());
    leaf_at(
        &mut f,
        3 * P,
        &[
            (ELEMENT_BUCKET, b"key", &key_bucket),
            (ELEMENT_BUCKET, b"meta", &inline_meta()),
        ],
    );
    page_header(&mut f, 4, FLAG_BRANCH, 2);
    let children = [(rev(2), 5u64), (rev(4), 6u64)];
    let mut data = 4 * P + 16 + 32;
    for (i, (key, child)) in children.iter().enumerate() {
        let e = 4 * P + 16 + 16 * i;
        put_u32(&mut f, e, (data - e) as u32);
        put_u32(&mut f, e + 4, key.len() as u32);
        put_u64(&mut f, e + 8, *child);
        f[data..data + key.len()].copy_from_slice(key);
        data += key.len();
    }
    page_header(&mut f, 5, FLAG_LEAF, 2);
    leaf_at(&mut f, 5 * P, &[(0, &rev(2), b"v2"), (0, &rev(3), b"v3")]);
    page_header(&mut f, 6, FLAG_LEAF, 1);
    let mut tomb = rev(4);
    tomb.push(b't');
    leaf_at(&mut f, 6 * P, &[(0, &tomb, b"v4")]);
    f
}

type Entries = Vec<(Vec<u8>, Vec<u8>, bool)>;
/// Buckets to write: each name with its keys and values.
type Contents = Vec<(Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>)>;

fn entries<'a>(db: &mut Db<'a>, bucket: Bucket<'a>) -> Result<Entries, BoltError> {
    let mut out = Vec::new();
    db.for_each(bucket, |e| {
        out.push((e.key().to_vec(), e.value().to_vec(), e.is_bucket()));
        Ok::<(), BoltError>(())
    })?;
    Ok(out)
}

/// Every bucket of the root, each with its entries.
fn read_all(data: &[u8]) -> Result<Vec<(Vec<u8>, Entries)>, BoltError> {
    let mut db = Db::open(data)?;
    let mut buckets = Vec::new();
    let root = db.root();
    db.for_each(root, |e| {
        buckets.push((e.key().to_vec(), e.bucket()?));
        Ok::<(), BoltError>(())
    })?;
    let mut out = Vec::new();
    for (name, bucket) in buckets {
        out.push((name, entries(&mut db, bucket)?));
    }
    Ok(out)
}

#[test]
fn fnv1a_64_matches_the_published_vectors() {
    assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn a_hand_laid_file_reads_with_its_inline_and_paged_buckets() {
    let f = hand_file();
    assert!(looks_like_bbolt(&f));
    let mut db = Db::open(&f).unwrap();
    assert_eq!((db.page_bytes(), db.pages()), (P, 7));
    let root = db.root();
    let names: Vec<(Vec<u8>, bool)> = entries(&mut db, root)
        .unwrap()
        .into_iter()
        .map(|(k, _, b)| (k, b))
        .collect();
    assert_eq!(names, [(b"key".to_vec(), true), (b"meta".to_vec(), true)]);
    let all = read_all(&f).unwrap();
    let mut tomb = rev(4);
    tomb.push(b't');
    assert_eq!(
        all[0].1,
        [
            (rev(2), b"v2".to_vec(), false),
            (rev(3), b"v3".to_vec(), false),
            (tomb, b"v4".to_vec(), false)
        ]
    );
    assert_eq!(
        all[1].1,
        [(
            b"consistent_index".to_vec(),
            42u64.to_be_bytes().to_vec(),
            false
        )]
    );
    let mut db = Db::open(&f).unwrap();
    let root = db.root();
    let mut buckets = Vec::new();
    db.for_each(root, |e| {
        buckets.push(e.bucket()?);
        Ok::<(), BoltError>(())
    })
    .unwrap();
    for b in buckets {
        entries(&mut db, b).unwrap();
    }
    assert_eq!(db.pages_not_reached(), [] as [u64; 0], "every page is used");
}

#[test]
fn the_valid_meta_with_the_higher_txid_is_the_current_one() {
    let mut f = hand_file();
    // Meta 1 becomes newer and says the database ends before page 6.
    meta(&mut f, 1, 6, 6);
    assert_eq!(
        read_all(&f).unwrap_err(),
        BoltError::BadPage {
            page: 6,
            why: "beyond the database's pages (its high water mark)"
        }
    );
    // A damaged newer meta is skipped: the older one still reads.
    f[P + 30] ^= 1;
    assert!(read_all(&f).is_ok());
    // A damaged first meta: the page size comes from the second.
    let mut f = hand_file();
    f[28] ^= 1;
    assert!(read_all(&f).is_ok());
    f[P + 28] ^= 1;
    assert_eq!(
        Db::open(&f).unwrap_err(),
        BoltError::BadMeta("checksum mismatch")
    );
}

/// `hand_file` changed by `damage`, and the error the reader gives.
fn damaged(damage: impl FnOnce(&mut Vec<u8>)) -> BoltError {
    let mut f = hand_file();
    damage(&mut f);
    read_all(&f).expect_err("damaged")
}

#[test]
fn damaged_files_get_an_error_naming_the_page_and_what_is_wrong() {
    let bad = |page, why| BoltError::BadPage { page, why };
    let branch_child = |i: usize| 4 * P + 16 + 16 * i + 8;
    let cases: Vec<(BoltError, BoltError)> = vec![
        (
            damaged(|f| {
                f[16] = 0;
                f[P + 16] = 0;
            }),
            BoltError::NotBbolt,
        ),
        (
            damaged(|f| {
                for id in [0, 1] {
                    put_u32(f, id * P + 20, 1);
                    reseal(f, id as u64);
                }
            }),
            BoltError::UnsupportedVersion(1),
        ),
        (
            damaged(|f| f.truncate(6 * P)),
            BoltError::Truncated {
                pages: 7,
                page_bytes: P,
                file_bytes: 6 * P,
            },
        ),
        (
            damaged(|f| put_u64(f, branch_child(0), 4)),
            BoltError::PageReachedTwice(4),
        ),
        (
            damaged(|f| put_u64(f, branch_child(1), 5)),
            BoltError::PageReachedTwice(5),
        ),
        (
            damaged(|f| put_u64(f, branch_child(1), 9)),
            bad(9, "beyond the database's pages (its high water mark)"),
        ),
        (
            damaged(|f| put_u64(f, branch_child(1), 1)),
            bad(1, "a tree page that is a meta page"),
        ),
        (
            damaged(|f| put_u64(f, branch_child(1), 2)),
            bad(2, "neither a leaf nor a branch page"),
        ),
        (
            damaged(|f| put_u64(f, 5 * P, 6)),
            bad(5, "its header names another page"),
        ),
        (
            damaged(|f| put_u32(f, 5 * P + 16 + 4, 500)),
            bad(5, "an element's key or value lies outside the page"),
        ),
        (
            damaged(|f| put_u16(f, 5 * P + 10, 40)),
            bad(5, "its element count runs past its end"),
        ),
        (
            damaged(|f| put_u32(f, 5 * P + 16 + 8, 0)),
            bad(5, "an empty key"),
        ),
        (
            damaged(|f| put_u32(f, 5 * P + 16, 4)),
            bad(5, "unknown leaf element flags"),
        ),
        (
            damaged(|f| {
                put_u64(f, branch_child(0), 6);
                put_u64(f, branch_child(1), 5);
            }),
            BoltError::KeysOutOfOrder { page: 5 },
        ),
        (
            damaged(|f| put_u32(f, 6 * P + 12, 5)),
            bad(6, "its overflow runs past the database's pages"),
        ),
        (
            damaged(|f| put_u16(f, 4 * P + 10, 0)),
            bad(4, "a branch page without children"),
        ),
        (
            // The `meta` element's value shrinks below a bucket header.
            damaged(|f| put_u32(f, 3 * P + 32 + 12, 10)),
            BoltError::BadBucket("a value shorter than a bucket header"),
        ),
        (
            // `meta` loses its bucket flag.
            damaged(|f| put_u32(f, 3 * P + 32, 0)),
            BoltError::BadBucket("a plain key where a bucket should be"),
        ),
        (
            damaged(|f| {
                for id in [0, 1] {
                    put_u64(f, id * P + 16 + 16, 0);
                    reseal(f, id as u64);
                }
            }),
            BoltError::BadMeta("root bucket page outside the database's pages"),
        ),
        (
            damaged(|f| {
                for id in [0, 1] {
                    put_u32(f, id * P + 16 + 8, 1000);
                    reseal(f, id as u64);
                }
            }),
            BoltError::BadMeta("page size is not a power of two from 512 to 64 KiB"),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
        assert!(!got.to_string().is_empty());
    }
}

#[test]
fn every_truncation_and_byte_flip_of_the_hand_laid_file_is_read_or_refused_without_panic() {
    let f = hand_file();
    for cut in 0..f.len() {
        let _ = read_all(&f[..cut]);
    }
    for at in 0..f.len() {
        for v in [0x00, 0x01, 0x7f, 0xff] {
            let mut g = f.clone();
            g[at] = v;
            let _ = read_all(&g);
        }
    }
}

/// (bucket, entries) for the writer tests: an empty bucket, one of many keys over several
/// tree levels with some values larger than a page, and a small one.
fn many() -> Contents {
    let keys = (0..1500u32)
        .map(|i| {
            let value_bytes = if i % 500 == 7 {
                3 * P
            } else {
                (i % 40) as usize
            };
            (
                format!("k{i:06}").into_bytes(),
                vec![(i % 251) as u8; value_bytes],
            )
        })
        .collect();
    vec![
        (b"a".to_vec(), Vec::new()),
        (b"b".to_vec(), keys),
        (
            b"c".to_vec(),
            (0..10u8).map(|i| (vec![b'x', i], vec![i])).collect(),
        ),
    ]
}

fn write(page_bytes: usize, buckets: &Contents) -> Vec<u8> {
    let mut db = DbWriter::new(Cursor::new(Vec::new()), page_bytes).unwrap();
    for (name, entries) in buckets {
        let mut bucket = db.bucket(name);
        for (k, v) in entries {
            bucket.put(k, v).unwrap();
        }
        bucket.finish().unwrap();
    }
    db.finish().unwrap().into_inner()
}

#[test]
fn written_files_read_back_whole_with_every_page_used() {
    for page_bytes in [P, PAGE_BYTES_DEFAULT] {
        let buckets = many();
        let f = write(page_bytes, &buckets);
        assert!(looks_like_bbolt(&f));
        assert_eq!(f.len() % page_bytes, 0);
        let all = read_all(&f).unwrap();
        let want: Vec<(Vec<u8>, Entries)> = buckets
            .iter()
            .map(|(name, entries)| {
                (
                    name.clone(),
                    entries
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone(), false))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(all, want);
        let mut db = Db::open(&f).unwrap();
        assert_eq!(db.pages() as usize * page_bytes, f.len());
        let root = db.root();
        let mut roots = Vec::new();
        db.for_each(root, |e| {
            roots.push(e.bucket()?);
            Ok::<(), BoltError>(())
        })
        .unwrap();
        for b in roots {
            entries(&mut db, b).unwrap();
        }
        assert_eq!(
            db.pages_not_reached(),
            [] as [u64; 0],
            "page size {page_bytes}: no page left unused, as bbolt's Tx.Check wants"
        );
    }
}

#[test]
fn a_written_file_has_both_meta_pages_as_tx_write_to_gives_them() {
    let f = write(P, &many());
    let txid = |id: usize| u64::from_le_bytes(f[id * P + 64..id * P + 72].try_into().unwrap());
    assert_eq!((txid(0), txid(1)), (2, 1));
    for id in [0, 1] {
        assert_eq!(
            u64::from_le_bytes(f[id * P..id * P + 8].try_into().unwrap()),
            id as u64
        );
        let m = &f[id * P + 16..id * P + 16 + 64];
        assert_eq!(
            u64::from_le_bytes(m[56..].try_into().unwrap()),
            fnv1a_64(&m[..56])
        );
    }
}

#[test]
#[should_panic(expected = "keys come in ascending order")]
fn the_writer_refuses_keys_out_of_order() {
    let mut db = DbWriter::new(Cursor::new(Vec::new()), P).unwrap();
    let mut bucket = db.bucket(b"b");
    bucket.put(b"2", b"").unwrap();
    bucket.put(b"1", b"").unwrap();
}
