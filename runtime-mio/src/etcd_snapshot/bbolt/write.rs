//! Writing a bbolt file in one pass, bucket by bucket, each bucket's keys in order: leaves are
//! filled and written as the keys arrive, then the branch levels above them, then the bucket
//! of buckets, the (empty) freelist and both meta pages. The result is what `Tx.WriteTo`
//! gives for a database with these buckets and no free pages: every page below the high water
//! mark is a meta page, the freelist, or reached exactly once, so `Tx.Check` passes.

use std::io::{self, Seek, SeekFrom, Write};

use super::page::Header;
use super::{
    BUCKET_HEADER_BYTES, ELEMENT_BUCKET, ELEMENT_BYTES, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF,
    FLAG_META, MAGIC, META_CHECKSUMMED_BYTES, PAGE_BYTES_MAX, PAGE_BYTES_MIN, PAGE_HEADER_BYTES,
    VERSION, fnv1a_64,
};

/// Pages 0 and 1 are the meta pages, page 2 the freelist; buckets start at page 3.
const FREELIST_PAGE: u64 = 2;
const FIRST_TREE_PAGE: u64 = 3;
/// The transaction ID of meta page 0; page 1 gets the one before, as `Tx.WriteTo` writes them.
const TXID: u64 = 2;
/// bbolt's `MaxKeySize` and `MaxValueSize`.
const KEY_BYTES_MAX: usize = 32_768;
const VALUE_BYTES_MAX: usize = (1 << 31) - 2;
/// bbolt's `minKeysPerPage`: a branch page holds at least two children, so every level above
/// the leaves has at most half as many pages as the one below it.
const BRANCH_CHILDREN_MIN: usize = 2;

/// A bbolt file being written to `out`, which must be empty: buckets in name order, then
/// [`DbWriter::finish`].
#[derive(Debug)]
pub(crate) struct DbWriter<W: Write + Seek> {
    out: W,
    page_bytes: usize,
    next_page: u64,
    /// Every bucket written: its name and root page.
    buckets: Vec<(Vec<u8>, u64)>,
}

impl<W: Write + Seek> DbWriter<W> {
    pub(crate) fn new(mut out: W, page_bytes: usize) -> io::Result<Self> {
        assert!(
            page_bytes.is_power_of_two() && (PAGE_BYTES_MIN..=PAGE_BYTES_MAX).contains(&page_bytes),
            "page size {page_bytes}"
        );
        out.seek(SeekFrom::Start(FIRST_TREE_PAGE * page_bytes as u64))?;
        Ok(DbWriter {
            out,
            page_bytes,
            next_page: FIRST_TREE_PAGE,
            buckets: Vec::new(),
        })
    }

    /// Starts the top-level bucket `name`; buckets come in ascending name order.
    pub(crate) fn bucket(&mut self, name: &[u8]) -> BucketWriter<'_, W> {
        assert!(
            !name.is_empty() && name.len() <= KEY_BYTES_MAX,
            "bucket name"
        );
        assert!(
            self.buckets
                .last()
                .is_none_or(|(last, _)| last.as_slice() < name),
            "buckets come in name order"
        );
        BucketWriter {
            db: self,
            name: name.to_vec(),
            leaf_data: Vec::new(),
            leaf_sizes: Vec::new(),
            leaf_bytes: PAGE_HEADER_BYTES,
            children: Vec::new(),
            last_key: Vec::new(),
            puts: 0,
        }
    }

    /// Writes a node (a leaf with `(flags, key, value)` elements, or a branch with
    /// `(0, key, child page as 8 bytes)`) as the next page, with overflow pages when it is larger
    /// than a page; returns its page number.
    fn write_node(&mut self, flags: u16, elements: &[(u32, &[u8], &[u8])]) -> io::Result<u64> {
        let count = u16::try_from(elements.len()).expect("a node has fewer than 65536 elements");
        let table_end = PAGE_HEADER_BYTES + elements.len() * ELEMENT_BYTES;
        let data_bytes: usize = elements.iter().map(|(_, k, v)| k.len() + v.len()).sum();
        let pages = (table_end + data_bytes).div_ceil(self.page_bytes).max(1);
        let id = self.next_page;
        let mut page = vec![0u8; pages * self.page_bytes];
        Header {
            id,
            flags,
            count,
            overflow: u32::try_from(pages - 1).expect("a node of fewer than 2^32 pages"),
        }
        .write(&mut page);
        let mut data_at = table_end;
        for (i, (element_flags, key, value)) in elements.iter().enumerate() {
            let at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
            let pos = u32::try_from(data_at - at).expect("a node is below 4 GiB");
            let key_bytes = u32::try_from(key.len()).expect("key size checked");
            let e = &mut page[at..at + ELEMENT_BYTES];
            if flags == FLAG_LEAF {
                e[0..4].copy_from_slice(&element_flags.to_le_bytes());
                e[4..8].copy_from_slice(&pos.to_le_bytes());
                e[8..12].copy_from_slice(&key_bytes.to_le_bytes());
                let value_bytes = u32::try_from(value.len()).expect("value size checked");
                e[12..16].copy_from_slice(&value_bytes.to_le_bytes());
            } else {
                assert_eq!(value.len(), 8, "a branch element's child page");
                e[0..4].copy_from_slice(&pos.to_le_bytes());
                e[4..8].copy_from_slice(&key_bytes.to_le_bytes());
                e[8..16].copy_from_slice(value);
            }
            page[data_at..data_at + key.len()].copy_from_slice(key);
            data_at += key.len();
            if flags == FLAG_LEAF {
                page[data_at..data_at + value.len()].copy_from_slice(value);
                data_at += value.len();
            }
        }
        self.out.write_all(&page)?;
        self.next_page += pages as u64;
        Ok(id)
    }

    /// Writes the bucket of buckets, the freelist and the meta pages; returns the output,
    /// positioned at the end of the file (`pages × page size` bytes).
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let headers: Vec<[u8; BUCKET_HEADER_BYTES]> = self
            .buckets
            .iter()
            .map(|(_, root)| {
                let mut h = [0u8; BUCKET_HEADER_BYTES];
                h[..8].copy_from_slice(&root.to_le_bytes());
                h
            })
            .collect();
        let buckets = std::mem::take(&mut self.buckets);
        let elements: Vec<(u32, &[u8], &[u8])> = buckets
            .iter()
            .zip(&headers)
            .map(|((name, _), header)| (ELEMENT_BUCKET, name.as_slice(), header.as_slice()))
            .collect();
        let root = self.write_node(FLAG_LEAF, &elements)?;
        let pages = self.next_page;
        let mut page = vec![0u8; self.page_bytes];
        Header {
            id: FREELIST_PAGE,
            flags: FLAG_FREELIST,
            count: 0,
            overflow: 0,
        }
        .write(&mut page);
        self.out
            .seek(SeekFrom::Start(FREELIST_PAGE * self.page_bytes as u64))?;
        self.out.write_all(&page)?;
        self.out.seek(SeekFrom::Start(0))?;
        for (id, txid) in [(0, TXID), (1, TXID - 1)] {
            self.out.write_all(&self.meta_page(id, txid, root, pages))?;
        }
        self.out
            .seek(SeekFrom::Start(pages * self.page_bytes as u64))?;
        Ok(self.out)
    }

    fn meta_page(&self, id: u64, txid: u64, root: u64, pages: u64) -> Vec<u8> {
        let mut page = vec![0u8; self.page_bytes];
        Header {
            id,
            flags: FLAG_META,
            count: 0,
            overflow: 0,
        }
        .write(&mut page);
        let m = &mut page[PAGE_HEADER_BYTES..];
        m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        let page_bytes = u32::try_from(self.page_bytes).expect("page size checked");
        m[8..12].copy_from_slice(&page_bytes.to_le_bytes());
        // flags (4 bytes) and the root bucket's sequence (8 bytes at 24) stay 0.
        m[16..24].copy_from_slice(&root.to_le_bytes());
        m[32..40].copy_from_slice(&FREELIST_PAGE.to_le_bytes());
        m[40..48].copy_from_slice(&pages.to_le_bytes());
        m[48..56].copy_from_slice(&txid.to_le_bytes());
        let checksum = fnv1a_64(&m[..META_CHECKSUMMED_BYTES]);
        m[56..64].copy_from_slice(&checksum.to_le_bytes());
        page
    }
}

/// One bucket being written: [`BucketWriter::put`] its keys in ascending order, then
/// [`BucketWriter::finish`]. Holds one leaf's worth of data and the first key of each page of
/// the level above the leaves.
#[derive(Debug)]
pub(crate) struct BucketWriter<'w, W: Write + Seek> {
    db: &'w mut DbWriter<W>,
    name: Vec<u8>,
    /// The leaf being filled: its keys and values back to back, and their sizes.
    leaf_data: Vec<u8>,
    leaf_sizes: Vec<(usize, usize)>,
    /// The leaf's page bytes so far: header, elements, keys and values.
    leaf_bytes: usize,
    /// Every page written for the bucket's lowest level: first key and page number.
    children: Vec<(Vec<u8>, u64)>,
    /// The last key put, and how many were: keys must ascend.
    last_key: Vec<u8>,
    puts: u64,
}

impl<W: Write + Seek> BucketWriter<'_, W> {
    /// Adds `key` = `value`; keys come in ascending order, each non-empty.
    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        assert!(!key.is_empty() && key.len() <= KEY_BYTES_MAX, "key size");
        assert!(value.len() <= VALUE_BYTES_MAX, "value size");
        assert!(
            self.puts == 0 || self.last_key.as_slice() < key,
            "keys come in ascending order"
        );
        self.puts += 1;
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        let bytes = ELEMENT_BYTES + key.len() + value.len();
        if !self.leaf_sizes.is_empty() && self.leaf_bytes + bytes > self.db.page_bytes {
            self.flush_leaf()?;
        }
        self.leaf_data.extend_from_slice(key);
        self.leaf_data.extend_from_slice(value);
        self.leaf_sizes.push((key.len(), value.len()));
        self.leaf_bytes += bytes;
        Ok(())
    }

    fn flush_leaf(&mut self) -> io::Result<()> {
        let mut at = 0;
        let elements: Vec<(u32, &[u8], &[u8])> = self
            .leaf_sizes
            .iter()
            .map(|&(k, v)| {
                let key = &self.leaf_data[at..at + k];
                let value = &self.leaf_data[at + k..at + k + v];
                at += k + v;
                (0, key, value)
            })
            .collect();
        let first = elements
            .first()
            .map(|(_, k, _)| k.to_vec())
            .unwrap_or_default();
        let page = self.db.write_node(FLAG_LEAF, &elements)?;
        self.children.push((first, page));
        self.leaf_data.clear();
        self.leaf_sizes.clear();
        self.leaf_bytes = PAGE_HEADER_BYTES;
        Ok(())
    }

    /// Writes what is left of the leaves and the branch levels above them.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if !self.leaf_sizes.is_empty() || self.children.is_empty() {
            // An empty bucket is one empty leaf.
            self.flush_leaf()?;
        }
        let mut level = std::mem::take(&mut self.children);
        while level.len() > 1 {
            level = self.branch_level(&level)?;
        }
        let (_, root) = level.pop().expect("a bucket has a root page");
        self.db.buckets.push((std::mem::take(&mut self.name), root));
        Ok(())
    }

    /// Writes branch pages over `children` (first key, page); returns the new level.
    fn branch_level(&mut self, children: &[(Vec<u8>, u64)]) -> io::Result<Vec<(Vec<u8>, u64)>> {
        let page_bytes = self.db.page_bytes;
        let mut parents = Vec::new();
        let mut start = 0;
        while start < children.len() {
            let mut end = start;
            let mut bytes = PAGE_HEADER_BYTES;
            while end < children.len() {
                let add = ELEMENT_BYTES + children[end].0.len();
                if end - start >= BRANCH_CHILDREN_MIN && bytes + add > page_bytes {
                    break;
                }
                bytes += add;
                end += 1;
            }
            let pages: Vec<[u8; 8]> = children[start..end]
                .iter()
                .map(|(_, page)| page.to_le_bytes())
                .collect();
            let elements: Vec<(u32, &[u8], &[u8])> = children[start..end]
                .iter()
                .zip(&pages)
                .map(|((key, _), page)| (0, key.as_slice(), page.as_slice()))
                .collect();
            let page = self.db.write_node(FLAG_BRANCH, &elements)?;
            parents.push((children[start].0.clone(), page));
            start = end;
        }
        assert!(
            parents.len() < children.len(),
            "each branch level is smaller than the one below it"
        );
        Ok(parents)
    }
}
