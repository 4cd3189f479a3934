//! Operations for the model check and the fuzzer, and their decoding from raw bytes.

use bytes::Bytes;

use crate::mvcc::revision::prefix_range_end;

/// Keys chosen so that prefixes, ranges and "from key" overlap in interesting ways.
const KEYS: [&[u8]; 8] = [b"a", b"ab", b"abc", b"b", b"ba", b"c", b"d", b"\xff"];

/// How a range ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// One key.
    Single,
    /// Every key with the key as prefix.
    Prefix,
    /// Up to (not including) another key of the table.
    To(u8),
    /// Every key from the key on ("\0").
    FromKey,
}

/// A key and range end in etcd's wire form.
pub fn key_range(key: u8, end: EndKind) -> (Bytes, Bytes) {
    let k = Bytes::from_static(KEYS[key as usize % KEYS.len()]);
    let e = match end {
        EndKind::Single => Bytes::new(),
        EndKind::Prefix => prefix_range_end(&k),
        EndKind::To(i) => Bytes::from_static(KEYS[i as usize % KEYS.len()]),
        EndKind::FromKey => Bytes::from_static(&[0]),
    };
    (k, e)
}

/// The table key `key`.
pub fn key(key: u8) -> Bytes {
    Bytes::from_static(KEYS[key as usize % KEYS.len()])
}

/// An operation inside a txn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    /// Puts value `value` at table key `key`.
    Put {
        /// The table key.
        key: u8,
        /// The value's number.
        value: u8,
    },
    /// Deletes table key `key`, or the range it starts.
    Delete {
        /// The table key.
        key: u8,
        /// How the range ends.
        end: EndKind,
    },
    /// Reads table key `key`, or the range it starts.
    Range {
        /// The table key.
        key: u8,
        /// How the range ends.
        end: EndKind,
    },
}

/// One step of a model check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Puts value `value` at table key `key`.
    Put {
        /// The table key.
        key: u8,
        /// The value's number.
        value: u8,
        /// Ask for the previous key-value.
        prev_kv: bool,
    },
    /// Deletes table key `key`, or the range it starts.
    Delete {
        /// The table key.
        key: u8,
        /// How the range ends.
        end: EndKind,
        /// Ask for the deleted key-values.
        prev_kv: bool,
    },
    /// `rev_back`: 0 reads the current revision, 255 a future one, else `current - rev_back`.
    Range {
        /// The table key.
        key: u8,
        /// How the range ends.
        end: EndKind,
        /// How far back to read (see the variant).
        rev_back: u8,
        /// The range's limit (0: none).
        limit: u8,
        /// Keys without values.
        keys_only: bool,
        /// Only the count.
        count_only: bool,
    },
    /// Compare `target` (0 version, 1 create, 2 mod, 3 value) of `key` with `value` by `result`.
    Txn {
        /// The table key compared.
        key: u8,
        /// How the compared range ends.
        end: EndKind,
        /// What is compared: 0 version, 1 create, 2 mod, else value.
        target: u8,
        /// How: equal, not equal, greater, less (modulo 4).
        result: u8,
        /// The number compared with.
        value: u8,
        /// Run when the compare holds.
        success: Vec<TxnOp>,
        /// Run otherwise.
        failure: Vec<TxnOp>,
    },
    /// Compacts at `current - rev_back`.
    Compact {
        /// How far back from the current revision.
        rev_back: u8,
    },
    /// One physical compaction step.
    CompactStep {
        /// The step's key budget is `budget_keys % 4 + 1`.
        budget_keys: u8,
    },
    /// `start_back`: 0 watches from now, else from `current + 1 - start_back`.
    Watch {
        /// The table key watched.
        key: u8,
        /// How the watched range ends.
        end: EndKind,
        /// Where the watch starts (see the variant).
        start_back: u8,
        /// Ask for previous key-values.
        prev_kv: bool,
        /// 1 filters out puts, 2 deletes, anything else nothing.
        filter: u8,
    },
    /// Drains every watch response and checks it against the model.
    Drain,
    /// One step of catching unsynced watchers up.
    Sync {
        /// The step reads `budget * 4 + 1` records.
        budget: u8,
    },
    /// Snapshots the store, restores a copy, and checks that both agree.
    SnapshotRoundTrip,
    /// Applies arbitrary bytes as an entry: they must not change the data.
    Garbage(Vec<u8>),
    /// Grants the lease of slot `lease` (ID `lease % LEASE_SLOTS + 1`) for `ttl` seconds.
    LeaseGrant {
        /// The lease slot.
        lease: u8,
        /// The TTL, in seconds.
        ttl: u8,
    },
    /// Revokes the lease of slot `lease`: its keys go in one revision.
    LeaseRevoke {
        /// The lease slot.
        lease: u8,
    },
    /// The replicated keep-alive of the lease of slot `lease`.
    LeaseRenew {
        /// The lease slot.
        lease: u8,
    },
    /// Puts `key` attached to the lease of slot `lease`.
    PutWithLease {
        /// The table key.
        key: u8,
        /// The value's number.
        value: u8,
        /// The lease slot.
        lease: u8,
    },
}

/// Lease slots: few, so that grants, puts and revokes meet the same leases often.
pub const LEASE_SLOTS: u8 = 3;

/// The lease ID of slot `lease`: never 0, which would ask the store to pick one.
pub fn lease_id(lease: u8) -> i64 {
    i64::from(lease % LEASE_SLOTS) + 1
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn end(&mut self) -> Option<EndKind> {
        let b = self.u8()?;
        Some(match b % 4 {
            0 => EndKind::Single,
            1 => EndKind::Prefix,
            2 => EndKind::To(b / 4),
            _ => EndKind::FromKey,
        })
    }
    fn txn_ops(&mut self) -> Option<Vec<TxnOp>> {
        let n = self.u8()? % 4;
        let mut ops = Vec::new();
        for _ in 0..n {
            let kind = self.u8()?;
            ops.push(match kind % 3 {
                0 => TxnOp::Put {
                    key: self.u8()?,
                    value: self.u8()?,
                },
                1 => TxnOp::Delete {
                    key: self.u8()?,
                    end: self.end()?,
                },
                _ => TxnOp::Range {
                    key: self.u8()?,
                    end: self.end()?,
                },
            });
        }
        Some(ops)
    }
    fn op(&mut self) -> Option<Op> {
        let kind = self.u8()?;
        Some(match kind % 16 {
            0..=3 => Op::Put {
                key: self.u8()?,
                value: self.u8()?,
                prev_kv: kind & 0x10 != 0,
            },
            4 => Op::Delete {
                key: self.u8()?,
                end: self.end()?,
                prev_kv: kind & 0x10 != 0,
            },
            5 | 6 => {
                let flags = self.u8()?;
                Op::Range {
                    key: self.u8()?,
                    end: self.end()?,
                    rev_back: self.u8()?,
                    limit: flags % 4,
                    keys_only: flags & 4 != 0,
                    count_only: flags & 8 != 0,
                }
            }
            7 | 8 => Op::Txn {
                key: self.u8()?,
                end: self.end()?,
                target: self.u8()? % 4,
                result: self.u8()? % 4,
                value: self.u8()?,
                success: self.txn_ops()?,
                failure: self.txn_ops()?,
            },
            9 => Op::Compact {
                rev_back: self.u8()? % 16,
            },
            10 => Op::CompactStep {
                budget_keys: self.u8()?,
            },
            11 => Op::Watch {
                key: self.u8()?,
                end: self.end()?,
                start_back: self.u8()? % 8,
                prev_kv: kind & 0x10 != 0,
                filter: self.u8()? % 3,
            },
            12 => Op::Drain,
            13 => Op::Sync { budget: self.u8()? },
            14 => Op::SnapshotRoundTrip,
            // Kind 15 splits on its high bits; the lowest four values stay garbage.
            _ if kind >= 0xc0 => Op::PutWithLease {
                key: self.u8()?,
                value: self.u8()?,
                lease: self.u8()?,
            },
            _ if kind >= 0xa0 => Op::LeaseRenew { lease: self.u8()? },
            _ if kind >= 0x80 => Op::LeaseRevoke { lease: self.u8()? },
            _ if kind >= 0x40 => Op::LeaseGrant {
                lease: self.u8()?,
                ttl: self.u8()? % 12,
            },
            _ => {
                let n = self.u8()? as usize % 16;
                let take = n.min(self.0.len());
                let (g, rest) = self.0.split_at(take);
                self.0 = rest;
                Op::Garbage(g.to_vec())
            }
        })
    }
}

/// Decodes a byte string into operations; trailing bytes that do not make an operation are
/// ignored. Every byte string decodes.
pub fn ops_from_bytes(data: &[u8]) -> Vec<Op> {
    let mut r = Reader(data);
    let mut ops = Vec::new();
    while let Some(op) = r.op() {
        ops.push(op);
    }
    ops
}
