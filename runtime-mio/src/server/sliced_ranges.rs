//! Ranges answered a slice of keys per loop turn, so that a range over millions of keys does
//! not hold the loop (its heartbeats, applies and other clients) for the seconds it takes to
//! walk and encode them.
//!
//! A range over more than one key (`tally_kvstore::RangeSlices`), in whatever order, walks
//! [`RANGE_KEYS_PER_TURN`] keys in the turn it is served; one that is not done by then waits
//! in [`SlicedRanges`], and each later turn moves the oldest one along by as many keys. The answer is encoded as it goes,
//! field by field as prost encodes a `RangeResponse` (header, records, `more`, `count`), so
//! the client gets the same bytes as from a range served whole. The answer is the store's at
//! the revision the range began at: writes between slices do not reach it. A compaction past
//! that revision ends a range that named its revision with etcd's "required revision has
//! been compacted"; one that did not name it (the latest) begins again at the latest.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use prost::encoding;
use tally_kvstore::proto::{RangeRequest, ResponseHeader};
use tally_kvstore::{KvError, KvStore, RangeSlices};

use crate::client::CallId;

/// Keys a sliced range walks per loop turn.
pub(super) const RANGE_KEYS_PER_TURN: usize = 20_000;
/// Sliced ranges waiting at once; a range that would be one more is answered whole in its
/// turn.
pub(super) const SLICED_RANGES_MAX: usize = 64;

/// `RangeResponse`'s field numbers (etcd's rpc.proto).
const FIELD_HEADER: u32 = 1;
const FIELD_KVS: u32 = 2;
const FIELD_MORE: u32 = 3;
const FIELD_COUNT: u32 = 4;

/// One range being answered.
#[derive(Debug)]
pub(super) struct SlicedRange {
    call: CallId,
    request: RangeRequest,
    slices: RangeSlices,
    /// The answer so far, encoded: its header, then its records.
    body: BytesMut,
}

/// Where a range stands after a slice.
#[derive(Debug)]
#[must_use]
pub(super) enum Progress {
    /// The encoded `RangeResponse`, to send.
    Done(Bytes),
    /// More slices to go.
    Pending,
    /// The range ends with this error.
    Failed(KvError),
}

impl SlicedRange {
    /// `header_of` gives the response header for a store revision.
    pub(super) fn new(
        call: CallId,
        request: RangeRequest,
        slices: RangeSlices,
        header_of: impl Fn(i64) -> ResponseHeader,
    ) -> SlicedRange {
        let mut range = SlicedRange {
            call,
            request,
            slices,
            body: BytesMut::new(),
        };
        range.begin(header_of);
        range
    }

    fn begin(&mut self, header_of: impl Fn(i64) -> ResponseHeader) {
        self.body.clear();
        let header = header_of(self.slices.view_rev());
        encoding::message::encode(FIELD_HEADER, &header, &mut self.body);
    }

    pub(super) fn call(&self) -> CallId {
        self.call
    }

    /// Walks up to `budget_keys` more keys of the range.
    pub(super) fn advance(
        &mut self,
        kv: &KvStore,
        budget_keys: usize,
        header_of: impl Fn(i64) -> ResponseHeader,
    ) -> Progress {
        let body = &mut self.body;
        let step = kv.range_slice(&mut self.slices, budget_keys, |record| {
            encoding::message::encode(FIELD_KVS, record, body);
        });
        match step {
            Ok(false) => Progress::Pending,
            Ok(true) => {
                let totals = self.slices.totals();
                // proto3: prost leaves fields at their defaults out, and so does this.
                if totals.more {
                    encoding::bool::encode(FIELD_MORE, &totals.more, &mut self.body);
                }
                if totals.count != 0 {
                    encoding::int64::encode(FIELD_COUNT, &totals.count, &mut self.body);
                }
                Progress::Done(std::mem::take(&mut self.body).freeze())
            }
            Err(KvError::Compacted) if self.request.revision <= 0 => {
                // The latest revision moved past a compaction: read the latest again.
                match kv.range_slices(&self.request) {
                    Ok(Some(slices)) => {
                        self.slices = slices;
                        self.begin(header_of);
                        Progress::Pending
                    }
                    Ok(None) => unreachable!("a range sliced once is sliced again"),
                    Err(error) => Progress::Failed(error),
                }
            }
            Err(error) => Progress::Failed(error),
        }
    }
}

/// Ranges waiting for their next slice, oldest first.
#[derive(Debug, Default)]
pub(super) struct SlicedRanges {
    waiting: VecDeque<SlicedRange>,
}

impl SlicedRanges {
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.waiting.len() >= SLICED_RANGES_MAX
    }

    pub(super) fn push(&mut self, range: SlicedRange) {
        assert!(!self.is_full(), "at most SLICED_RANGES_MAX ranges wait");
        self.waiting.push_back(range);
    }

    /// The range whose turn it is; push it back if it is not done.
    pub(super) fn pop(&mut self) -> Option<SlicedRange> {
        self.waiting.pop_front()
    }
}

#[cfg(test)]
mod tests;
