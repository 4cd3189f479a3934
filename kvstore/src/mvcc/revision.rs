//! Revisions and key ranges.

use bytes::Bytes;

/// A point in the store's history: one `main` per write request, `sub` orders the changes inside
/// it. Ordered by `main`, then `sub`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision {
    main: i64,
    sub: i64,
}

impl Revision {
    /// The revision `main`.`sub`.
    pub const fn new(main: i64, sub: i64) -> Self {
        Revision { main, sub }
    }

    /// The write request's revision.
    pub const fn main(self) -> i64 {
        self.main
    }

    /// The change's position inside its write request.
    pub const fn sub(self) -> i64 {
        self.sub
    }
}

/// The end of a key range, decoded from etcd's `range_end` conventions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RangeEnd {
    /// An empty `range_end`: the single key.
    Single,
    /// `range_end` = "\0": every key >= key.
    Unbounded,
    /// `[key, end)`.
    To(Bytes),
}

impl RangeEnd {
    pub(crate) fn from_wire(range_end: &Bytes) -> Self {
        match range_end.as_ref() {
            [] => RangeEnd::Single,
            [0] => RangeEnd::Unbounded,
            _ => RangeEnd::To(range_end.clone()),
        }
    }

    /// Whether `k` lies in the range that starts at `key`.
    pub(crate) fn contains(&self, key: &[u8], k: &[u8]) -> bool {
        match self {
            RangeEnd::Single => k == key,
            RangeEnd::Unbounded => k >= key,
            RangeEnd::To(end) => k >= key && k < end.as_ref(),
        }
    }
}

/// The smallest key greater than every key with `prefix`, as etcd's `GetPrefixRangeEnd`.
pub fn prefix_range_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return Bytes::from(end);
        }
        end.pop();
    }
    Bytes::from_static(&[0])
}
