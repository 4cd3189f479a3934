//! Reading a bbolt file held in memory: the meta pages, then bucket by bucket, every key in
//! order. Nothing in the file is trusted: each page is checked against the file's size and the
//! meta's high water mark before it is read, and reached at most once, so a damaged or hostile
//! file costs at most one visit per page and ends in a [`BoltError`], never a panic or a loop.

use super::page::{Header, Node, u32_at, u64_at};
use super::{
    BUCKET_HEADER_BYTES, BoltError, MAGIC, META_BYTES, META_CHECKSUMMED_BYTES, NO_FREELIST,
    PAGE_BYTES_MAX, PAGE_BYTES_MIN, PAGE_HEADER_BYTES, VERSION, fnv1a_64,
};

/// Branch levels followed from a bucket's root before the tree counts as damaged: a bbolt
/// tree of a billion keys is about six levels deep.
const TREE_DEPTH_MAX: usize = 64;

/// The fields of a valid meta page that reading needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    page_bytes: usize,
    root: u64,
    freelist: u64,
    pages: u64,
    txid: u64,
}

/// The meta page at byte `at`, checked: bbolt's magic, version, checksum, a page size it can
/// have, and root and freelist pages below the high water mark.
fn read_meta(data: &[u8], at: usize) -> Result<Meta, BoltError> {
    let bytes = data
        .get(at..at + PAGE_HEADER_BYTES + META_BYTES)
        .ok_or(BoltError::NotBbolt)?;
    let meta = &bytes[PAGE_HEADER_BYTES..];
    if u32_at(meta, 0) != MAGIC {
        return Err(BoltError::NotBbolt);
    }
    let version = u32_at(meta, 4);
    if version != VERSION {
        return Err(BoltError::UnsupportedVersion(version));
    }
    if u64_at(meta, META_CHECKSUMMED_BYTES) != fnv1a_64(&meta[..META_CHECKSUMMED_BYTES]) {
        return Err(BoltError::BadMeta("checksum mismatch"));
    }
    let page_bytes = u32_at(meta, 8) as usize;
    if !page_bytes.is_power_of_two() || !(PAGE_BYTES_MIN..=PAGE_BYTES_MAX).contains(&page_bytes) {
        return Err(BoltError::BadMeta(
            "page size is not a power of two from 512 to 64 KiB",
        ));
    }
    let m = Meta {
        page_bytes,
        root: u64_at(meta, 16),
        freelist: u64_at(meta, 32),
        pages: u64_at(meta, 40),
        txid: u64_at(meta, 48),
    };
    if !(2..m.pages).contains(&m.root) {
        return Err(BoltError::BadMeta(
            "root bucket page outside the database's pages",
        ));
    }
    if m.freelist != NO_FREELIST && !(2..m.pages).contains(&m.freelist) {
        return Err(BoltError::BadMeta(
            "freelist page outside the database's pages",
        ));
    }
    Ok(m)
}

/// The current meta page, as bbolt picks it: the valid one with the higher transaction ID.
/// Page 0 gives the page size; if it is damaged, page 1 is looked for at every page size.
fn current_meta(data: &[u8]) -> Result<Meta, BoltError> {
    let first = read_meta(data, 0);
    let second = match &first {
        Ok(m) => read_meta(data, m.page_bytes).and_then(|second| {
            if second.page_bytes == m.page_bytes {
                Ok(second)
            } else {
                Err(BoltError::BadMeta(
                    "the meta pages disagree on the page size",
                ))
            }
        }),
        Err(_) => {
            let mut found = Err(BoltError::NotBbolt);
            let mut size = PAGE_BYTES_MIN;
            while size <= PAGE_BYTES_MAX {
                match read_meta(data, size) {
                    Ok(m) if m.page_bytes == size => {
                        found = Ok(m);
                        break;
                    }
                    Ok(_) | Err(BoltError::NotBbolt) => {}
                    Err(e) => found = Err(e),
                }
                size *= 2;
            }
            found
        }
    };
    match (first, second) {
        (Ok(a), Ok(b)) => Ok(if b.txid > a.txid { b } else { a }),
        (Ok(m), Err(_)) | (Err(_), Ok(m)) => Ok(m),
        // The first page's error says most: it is where every bbolt file starts.
        (Err(BoltError::NotBbolt), Err(e)) | (Err(e), Err(_)) => Err(e),
    }
}

/// A bucket to read: its root page, or its inline page's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bucket<'a> {
    Paged(u64),
    Inline(&'a [u8]),
}

/// One key of a bucket, with its value or, for a nested bucket, its bucket header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    key: &'a [u8],
    value: &'a [u8],
    is_bucket: bool,
}

impl<'a> Entry<'a> {
    pub(crate) fn key(&self) -> &'a [u8] {
        self.key
    }

    pub(crate) fn value(&self) -> &'a [u8] {
        self.value
    }

    pub(crate) fn is_bucket(&self) -> bool {
        self.is_bucket
    }

    /// The nested bucket this entry names.
    pub(crate) fn bucket(&self) -> Result<Bucket<'a>, BoltError> {
        if !self.is_bucket {
            return Err(BoltError::BadBucket("a plain key where a bucket should be"));
        }
        if self.value.len() < BUCKET_HEADER_BYTES {
            return Err(BoltError::BadBucket("a value shorter than a bucket header"));
        }
        match u64_at(self.value, 0) {
            0 => Ok(Bucket::Inline(&self.value[BUCKET_HEADER_BYTES..])),
            root => Ok(Bucket::Paged(root)),
        }
    }
}

/// A bbolt file, open for reading its buckets.
#[derive(Debug)]
pub(crate) struct Db<'a> {
    data: &'a [u8],
    meta: Meta,
    /// One bit per page: reached from a bucket already.
    reached: Vec<u64>,
}

impl<'a> Db<'a> {
    /// Checks the meta pages and that the file holds every page they name.
    pub(crate) fn open(data: &'a [u8]) -> Result<Db<'a>, BoltError> {
        let meta = current_meta(data)?;
        let end = meta.pages.checked_mul(meta.page_bytes as u64);
        if end.is_none_or(|end| end > data.len() as u64) {
            return Err(BoltError::Truncated {
                pages: meta.pages,
                page_bytes: meta.page_bytes,
                file_bytes: data.len(),
            });
        }
        let words = usize::try_from(meta.pages.div_ceil(64)).expect("pages fit in the file");
        Ok(Db {
            data,
            meta,
            reached: vec![0; words],
        })
    }

    #[cfg(test)]
    pub(crate) fn page_bytes(&self) -> usize {
        self.meta.page_bytes
    }

    /// Pages in use: the high water mark.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> u64 {
        self.meta.pages
    }

    /// The bucket of buckets.
    pub(crate) fn root(&self) -> Bucket<'a> {
        Bucket::Paged(self.meta.root)
    }

    /// Calls `visit` on every entry of `bucket`, in key order; stops at its first error.
    pub(crate) fn for_each<E: From<BoltError>>(
        &mut self,
        bucket: Bucket<'a>,
        mut visit: impl FnMut(Entry<'a>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut last: Option<&'a [u8]> = None;
        let mut in_order = |key: &'a [u8], page: u64| {
            if last.is_some_and(|l| key <= l) {
                return Err(BoltError::KeysOutOfOrder { page });
            }
            last = Some(key);
            Ok(())
        };
        let root = match bucket {
            Bucket::Inline(bytes) => {
                let node = Node::parse(bytes, true).map_err(BoltError::BadBucket)?;
                for i in 0..node.count() {
                    let e = node.leaf(i).map_err(BoltError::BadBucket)?;
                    in_order(e.key, 0)?;
                    visit(Entry {
                        key: e.key,
                        value: e.value,
                        is_bucket: e.is_bucket,
                    })?;
                }
                return Ok(());
            }
            Bucket::Paged(id) => (self.node(id)?, id),
        };
        // Depth first, children in order: the keys come out sorted. Each entry: the node, its
        // page and the next child to descend into.
        let mut stack = vec![(root.0, root.1, 0usize)];
        while let Some(&(node, page, next)) = stack.last() {
            let bad = |why| BoltError::BadPage { page, why };
            if node.is_leaf() {
                for i in 0..node.count() {
                    let e = node.leaf(i).map_err(bad)?;
                    in_order(e.key, page)?;
                    visit(Entry {
                        key: e.key,
                        value: e.value,
                        is_bucket: e.is_bucket,
                    })?;
                }
                stack.pop();
                continue;
            }
            if next == node.count() {
                stack.pop();
                continue;
            }
            let (_, child) = node.branch(next).map_err(bad)?;
            stack.last_mut().expect("the node just read").2 += 1;
            if stack.len() >= TREE_DEPTH_MAX {
                return Err(bad("the tree is deeper than 64 levels").into());
            }
            let child_node = self.node(child)?;
            stack.push((child_node, child, 0));
        }
        Ok(())
    }

    /// Page `id` of a bucket's tree, with its overflow pages; each page is reached once.
    fn node(&mut self, id: u64) -> Result<Node<'a>, BoltError> {
        let bad = |why| BoltError::BadPage { page: id, why };
        if id < 2 {
            return Err(bad("a tree page that is a meta page"));
        }
        if id >= self.meta.pages {
            return Err(bad("beyond the database's pages (its high water mark)"));
        }
        let page_bytes = self.meta.page_bytes;
        // Below the high water mark, which open() checked against the file's size.
        let at = id as usize * page_bytes;
        let header = Header::read(&self.data[at..]);
        if header.id != id {
            return Err(bad("its header names another page"));
        }
        let span = u64::from(header.overflow) + 1;
        if span > self.meta.pages - id {
            return Err(bad("its overflow runs past the database's pages"));
        }
        for page in id..id + span {
            let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
            if self.reached[word] & bit != 0 {
                return Err(BoltError::PageReachedTwice(page));
            }
            self.reached[word] |= bit;
        }
        let bytes = &self.data[at..at + span as usize * page_bytes];
        Node::parse(bytes, false).map_err(bad)
    }

    /// Pages below the high water mark that are neither meta pages, the freelist, nor reached
    /// by the buckets read so far: after reading every bucket, the pages bbolt counts as free.
    #[cfg(test)]
    pub(crate) fn pages_not_reached(&self) -> Vec<u64> {
        let freelist = (self.meta.freelist != NO_FREELIST).then(|| {
            let at = self.meta.freelist as usize * self.meta.page_bytes;
            let header = Header::read(&self.data[at..]);
            assert_eq!(header.flags, super::FLAG_FREELIST, "the freelist page");
            self.meta.freelist..=self.meta.freelist + u64::from(header.overflow)
        });
        (2..self.meta.pages)
            .filter(|p| self.reached[(p / 64) as usize] & (1 << (p % 64)) == 0)
            .filter(|p| freelist.as_ref().is_none_or(|f| !f.contains(p)))
            .collect()
    }
}
