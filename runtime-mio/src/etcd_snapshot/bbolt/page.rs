//! One page's header and elements, read with every offset checked against the page's bytes.

use super::{ELEMENT_BUCKET, ELEMENT_BYTES, FLAG_BRANCH, FLAG_LEAF, PAGE_HEADER_BYTES};

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A page's 16-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) id: u64,
    pub(super) flags: u16,
    pub(super) count: u16,
    pub(super) overflow: u32,
}

impl Header {
    /// The header at the start of `bytes`, which must hold at least one.
    pub(super) fn read(bytes: &[u8]) -> Header {
        assert!(bytes.len() >= PAGE_HEADER_BYTES, "a page holds its header");
        Header {
            id: u64_at(bytes, 0),
            flags: u16_at(bytes, 8),
            count: u16_at(bytes, 10),
            overflow: u32_at(bytes, 12),
        }
    }

    pub(super) fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.id.to_le_bytes());
        out[8..10].copy_from_slice(&self.flags.to_le_bytes());
        out[10..12].copy_from_slice(&self.count.to_le_bytes());
        out[12..16].copy_from_slice(&self.overflow.to_le_bytes());
    }
}

/// A leaf or branch page (or an inline bucket's page): its header and all its bytes, overflow
/// pages included.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node<'a> {
    header: Header,
    bytes: &'a [u8],
}

/// One element of a leaf: a key and its value, or a nested bucket's name and header.
#[derive(Clone, Copy, Debug)]
pub(super) struct LeafElement<'a> {
    pub(super) key: &'a [u8],
    pub(super) value: &'a [u8],
    pub(super) is_bucket: bool,
}

impl<'a> Node<'a> {
    /// The node in `bytes`, checking that its flags name a leaf or a branch (a leaf only, when
    /// `leaf_only`) and that its element table fits. On error, what is wrong.
    pub(super) fn parse(bytes: &'a [u8], leaf_only: bool) -> Result<Node<'a>, &'static str> {
        if bytes.len() < PAGE_HEADER_BYTES {
            return Err("shorter than a page header");
        }
        let header = Header::read(bytes);
        match header.flags {
            FLAG_LEAF => {}
            FLAG_BRANCH if !leaf_only => {}
            FLAG_BRANCH => return Err("a branch page where only a leaf may be"),
            _ => return Err("neither a leaf nor a branch page"),
        }
        let table_end = PAGE_HEADER_BYTES + usize::from(header.count) * ELEMENT_BYTES;
        if table_end > bytes.len() {
            return Err("its element count runs past its end");
        }
        if header.flags == FLAG_BRANCH && header.count == 0 {
            return Err("a branch page without children");
        }
        Ok(Node { header, bytes })
    }

    pub(super) fn is_leaf(&self) -> bool {
        self.header.flags == FLAG_LEAF
    }

    pub(super) fn count(&self) -> usize {
        usize::from(self.header.count)
    }

    /// `len` bytes at `pos` from element `index`'s own offset, if they lie inside the page.
    fn span(&self, index: usize, pos: u32, len: u64) -> Result<&'a [u8], &'static str> {
        let element_at = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
        let start = (element_at as u64) + u64::from(pos);
        let end = start + len;
        if end > self.bytes.len() as u64 {
            return Err("an element's key or value lies outside the page");
        }
        Ok(&self.bytes[start as usize..end as usize])
    }

    pub(super) fn leaf(&self, index: usize) -> Result<LeafElement<'a>, &'static str> {
        assert!(self.is_leaf() && index < self.count(), "a leaf element");
        let at = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
        let flags = u32_at(self.bytes, at);
        let pos = u32_at(self.bytes, at + 4);
        let key_bytes = u32_at(self.bytes, at + 8);
        let value_bytes = u32_at(self.bytes, at + 12);
        let both = self.span(index, pos, u64::from(key_bytes) + u64::from(value_bytes))?;
        if key_bytes == 0 {
            return Err("an empty key");
        }
        if flags & !ELEMENT_BUCKET != 0 {
            return Err("unknown leaf element flags");
        }
        let (key, value) = both.split_at(key_bytes as usize);
        Ok(LeafElement {
            key,
            value,
            is_bucket: flags & ELEMENT_BUCKET != 0,
        })
    }

    /// Branch element `index`: its child's first key and page.
    pub(super) fn branch(&self, index: usize) -> Result<(&'a [u8], u64), &'static str> {
        assert!(!self.is_leaf() && index < self.count(), "a branch element");
        let at = PAGE_HEADER_BYTES + index * ELEMENT_BYTES;
        let pos = u32_at(self.bytes, at);
        let key_bytes = u32_at(self.bytes, at + 4);
        let child = u64_at(self.bytes, at + 8);
        let key = self.span(index, pos, u64::from(key_bytes))?;
        if key.is_empty() {
            return Err("an empty key");
        }
        Ok((key, child))
    }
}
