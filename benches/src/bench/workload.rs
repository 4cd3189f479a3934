//! What each client sends, and how each response is checked.

use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tally_kvstore::proto::{
    Compare, CompareResult, CompareTarget, LeaseGrantRequest, LeaseGrantResponse,
    LeaseKeepAliveRequest, LeaseKeepAliveResponse, PutRequest, PutResponse, RangeRequest,
    RangeResponse, RequestOp, ResponseHeader, TxnRequest, TxnResponse, compare, request_op,
    response_op,
};

use super::check::RevisionCheck;
use super::flags::{Command, Config};

pub const PUT: &str = "/etcdserverpb.KV/Put";
pub const RANGE: &str = "/etcdserverpb.KV/Range";
pub const TXN: &str = "/etcdserverpb.KV/Txn";
pub const LEASE_GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
pub const LEASE_KEEPALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
pub const WATCH: &str = "/etcdserverpb.Watch/Watch";

/// The key the watch workload's writer puts and its watchers watch.
pub const WATCH_KEY: &[u8] = b"tally-bench/watch";
/// The TTL of the leases that lease-keepalive renews: long enough that none expires mid-run.
const LEASE_TTL_SECS: i64 = 300;

/// A gRPC length-prefixed message.
pub fn frame(message: &impl Message) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    message.encode(&mut out).expect("BytesMut grows as needed");
    out.freeze()
}

/// One request to send.
#[derive(Debug)]
pub struct Call {
    pub path: &'static str,
    pub body: Bytes,
    /// Counted in the results (false for set-up calls such as a lease grant).
    pub counted: bool,
    /// Done at the first response message (a KeepAliveOnce on a stream), not at the trailers.
    pub first_message: bool,
}

/// What a response meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A txn-put whose compare failed: a correct answer, counted apart.
    Conflict,
    Error(String),
}

/// Per-client state.
#[derive(Debug)]
pub struct ClientState {
    rng: u64,
    pub revisions: RevisionCheck,
    pub regressions: u64,
    lease: Option<i64>,
    mod_revisions: HashMap<u64, i64>,
    in_flight_key: u64,
}

impl ClientState {
    pub fn new(client_id: u64) -> ClientState {
        ClientState {
            rng: 0x9E37_79B9_7F4A_7C15 ^ client_id.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1,
            revisions: RevisionCheck::default(),
            regressions: 0,
            lease: None,
            mod_revisions: HashMap::new(),
            in_flight_key: 0,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: a per-client stream, so runs are repeatable.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn check_header(&mut self, header: Option<&ResponseHeader>) -> Outcome {
        let Some(header) = header else {
            return Outcome::Error("response without a header".into());
        };
        if !self.revisions.observe(header.revision) {
            self.regressions += 1;
        }
        Outcome::Ok
    }
}

/// The request generator for one run.
#[derive(Debug)]
pub struct Workload {
    command: Command,
    key_size: usize,
    key_space_size: u64,
    sequential_keys: bool,
    key_start: u64,
    lease_id_base: i64,
    lease_expire_at_ms: Option<u64>,
    watch_prefix: bool,
    serializable: bool,
    range_key: Bytes,
    value: Bytes,
    val_size: usize,
    epoch: Instant,
}

impl Workload {
    pub fn new(config: &Config, epoch: Instant) -> Workload {
        let value: Vec<u8> = (0..config.val_size)
            .map(|i| b'a' + (i.wrapping_mul(7919) % 26) as u8)
            .collect();
        Workload {
            command: config.command,
            key_size: config.key_size,
            key_space_size: config.key_space_size,
            sequential_keys: config.sequential_keys,
            key_start: config.key_start,
            lease_id_base: config.lease_id_base,
            lease_expire_at_ms: config.lease_expire_at_ms,
            watch_prefix: config.watch_prefix,
            serializable: config.serializable,
            range_key: Bytes::from(config.range_key.clone()),
            value: Bytes::from(value),
            val_size: config.val_size,
            epoch,
        }
    }

    /// The key with index `index`: its decimal digits, zero-padded to --key-size.
    pub fn key(&self, index: u64) -> Bytes {
        Bytes::from(format!("{index:0width$}", width = self.key_size))
    }

    fn key_index(&self, client: &mut ClientState, ticket: u64) -> u64 {
        let offset = if self.sequential_keys {
            ticket % self.key_space_size
        } else {
            client.next_random() % self.key_space_size
        };
        self.key_start + offset
    }

    /// The range end of the watchers' watch: none for one key, the prefix's end for a prefix.
    pub fn watch_range_end(&self) -> Bytes {
        if !self.watch_prefix {
            return Bytes::new();
        }
        let mut end = WATCH_KEY.to_vec();
        // WATCH_KEY ends in an ASCII letter, so adding one to its last byte cannot carry.
        *end.last_mut().expect("WATCH_KEY is not empty") += 1;
        Bytes::from(end)
    }

    /// A lease-grant for lease `id`, with the TTL left until `lease_expire_at_ms` when set.
    fn lease_grant(&self, id: i64) -> LeaseGrantRequest {
        let ttl = match self.lease_expire_at_ms {
            None => LEASE_TTL_SECS,
            Some(at_ms) => {
                let now_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                // Rounded to the nearest second: every lease expires within half a second of
                // the deadline, give or take the grant's own latency.
                let left_ms = at_ms.saturating_sub(now_ms) + 500;
                i64::try_from(left_ms / 1000).unwrap_or(i64::MAX).max(1)
            }
        };
        LeaseGrantRequest { ttl, id }
    }

    /// A set-up call the client needs before its first counted one.
    pub fn setup(&self, client: &ClientState) -> Option<Call> {
        if self.command != Command::LeaseKeepAlive || client.lease.is_some() {
            return None;
        }
        Some(Call {
            path: LEASE_GRANT,
            body: frame(&self.lease_grant(0)),
            counted: false,
            first_message: false,
        })
    }

    /// The counted call for `ticket` (0, 1, 2, ... over all clients).
    pub fn call(&self, client: &mut ClientState, ticket: u64) -> Call {
        let (path, body, first_message) = match self.command {
            Command::Put => {
                let index = self.key_index(client, ticket);
                let mut put = self.put(self.key(index), self.value.clone());
                if self.lease_id_base != 0 {
                    put.lease = self.lease_id_base + i64::try_from(index).unwrap_or(i64::MAX);
                }
                (PUT, frame(&put), false)
            }
            Command::LeaseGrant => {
                let index = self.key_start + ticket;
                let id = self.lease_id_base + i64::try_from(index).unwrap_or(i64::MAX);
                (LEASE_GRANT, frame(&self.lease_grant(id)), false)
            }
            Command::Range => (RANGE, frame(&self.range(self.range_key.clone())), false),
            Command::TxnPut => {
                let index = self.key_index(client, ticket);
                client.in_flight_key = index;
                let expected = client.mod_revisions.get(&index).copied().unwrap_or(0);
                (TXN, frame(&self.cas(self.key(index), expected)), false)
            }
            Command::Watch => (PUT, frame(&self.timestamped_put()), false),
            Command::LeaseKeepAlive => {
                let id = client.lease.unwrap_or(0);
                (LEASE_KEEPALIVE, frame(&LeaseKeepAliveRequest { id }), true)
            }
        };
        Call {
            path,
            body,
            counted: true,
            first_message,
        }
    }

    fn put(&self, key: Bytes, value: Bytes) -> PutRequest {
        PutRequest {
            key,
            value,
            ..PutRequest::default()
        }
    }

    fn range(&self, key: Bytes) -> RangeRequest {
        RangeRequest {
            key,
            serializable: self.serializable,
            ..RangeRequest::default()
        }
    }

    /// Kubernetes' GuaranteedUpdate: write if nobody wrote since we read, else read it again.
    fn cas(&self, key: Bytes, mod_revision: i64) -> TxnRequest {
        TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal as i32,
                target: CompareTarget::Mod as i32,
                key: key.clone(),
                target_union: Some(compare::TargetUnion::ModRevision(mod_revision)),
                range_end: Bytes::new(),
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(
                    self.put(key.clone(), self.value.clone()),
                )),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })),
            }],
        }
    }

    /// The watch writer's put: the value starts with the send time, so every watcher can
    /// compute the delivery latency of the event on its own.
    fn timestamped_put(&self) -> PutRequest {
        let sent_ns = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut value = BytesMut::with_capacity(self.val_size.max(8));
        value.put_u64_le(sent_ns);
        value.resize(self.val_size.max(8), b'w');
        self.put(Bytes::from_static(WATCH_KEY), value.freeze())
    }

    /// Checks the response `message` to a call of kind `path`.
    pub fn check(&self, client: &mut ClientState, path: &str, message: &[u8]) -> Outcome {
        fn decode<M: Message + Default>(message: &[u8]) -> Result<M, Outcome> {
            M::decode(message).map_err(|e| Outcome::Error(format!("undecodable response: {e}")))
        }
        let result = match path {
            PUT => decode::<PutResponse>(message).map(|r| client.check_header(r.header.as_ref())),
            RANGE => decode::<RangeResponse>(message).map(|r| {
                let outcome = client.check_header(r.header.as_ref());
                if outcome == Outcome::Ok && r.kvs.len() > 1 {
                    return Outcome::Error("range of one key returned several".into());
                }
                outcome
            }),
            TXN => decode::<TxnResponse>(message).map(|r| self.check_txn(client, &r)),
            LEASE_GRANT => decode::<LeaseGrantResponse>(message).map(|r| {
                if r.id == 0 || !r.error.is_empty() {
                    return Outcome::Error(format!("lease grant failed: {:?}", r.error));
                }
                client.lease = Some(r.id);
                client.check_header(r.header.as_ref())
            }),
            LEASE_KEEPALIVE => decode::<LeaseKeepAliveResponse>(message).map(|r| {
                if r.ttl <= 0 {
                    return Outcome::Error("keepalive: lease not found".into());
                }
                client.check_header(r.header.as_ref())
            }),
            other => Ok(Outcome::Error(format!("no checker for {other}"))),
        };
        result.unwrap_or_else(|e| e)
    }

    fn check_txn(&self, client: &mut ClientState, r: &TxnResponse) -> Outcome {
        let header = client.check_header(r.header.as_ref());
        if header != Outcome::Ok {
            return header;
        }
        let key = client.in_flight_key;
        if r.succeeded {
            let revision = r.header.as_ref().map_or(0, |h| h.revision);
            client.mod_revisions.insert(key, revision);
            return Outcome::Ok;
        }
        let current = r.responses.first().and_then(|op| match &op.response {
            Some(response_op::Response::ResponseRange(range)) => {
                Some(range.kvs.first().map_or(0, |kv| kv.mod_revision))
            }
            _ => None,
        });
        match current {
            Some(mod_revision) => {
                client.mod_revisions.insert(key, mod_revision);
                Outcome::Conflict
            }
            None => Outcome::Error("failed txn without its range response".into()),
        }
    }
}

/// The send time a watch event's value carries, in nanoseconds since the run's epoch.
pub fn watch_sent_ns(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::flags::parse;

    fn workload(args: &[&str]) -> Workload {
        Workload::new(&parse(args).expect("flags"), Instant::now())
    }

    fn header(revision: i64) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            revision,
            ..ResponseHeader::default()
        })
    }

    #[test]
    fn keys_are_padded_and_sequential_keys_cycle() {
        let w = workload(&[
            "put",
            "--key-size",
            "6",
            "--key-space-size",
            "3",
            "--sequential-keys",
        ]);
        let mut c = ClientState::new(0);
        assert_eq!(w.key(42), Bytes::from_static(b"000042"));
        let keys: Vec<u64> = (0..5).map(|t| w.key_index(&mut c, t)).collect();
        assert_eq!(keys, vec![0, 1, 2, 0, 1]);
        let call = w.call(&mut c, 0);
        assert_eq!(call.path, PUT);
        let put = PutRequest::decode(&call.body[5..]).expect("put");
        assert_eq!(put.key, Bytes::from_static(b"000000"));
        assert_eq!(put.value.len(), 8);
    }

    #[test]
    fn a_put_whose_revision_goes_back_is_counted() {
        let w = workload(&["put"]);
        let mut c = ClientState::new(1);
        for revision in [5, 6, 4, 7] {
            let message = PutResponse {
                header: header(revision),
                prev_kv: None,
            }
            .encode_to_vec();
            assert_eq!(w.check(&mut c, PUT, &message), Outcome::Ok);
        }
        assert_eq!(c.regressions, 1);
        let no_header = PutResponse::default().encode_to_vec();
        assert!(matches!(
            w.check(&mut c, PUT, &no_header),
            Outcome::Error(_)
        ));
        assert!(matches!(
            w.check(&mut c, PUT, b"\xff\xff"),
            Outcome::Error(_)
        ));
    }

    #[test]
    fn txn_put_caches_mod_revisions() {
        let w = workload(&["txn-put", "--key-space-size", "1"]);
        let mut c = ClientState::new(2);
        let call = w.call(&mut c, 0);
        let txn = TxnRequest::decode(&call.body[5..]).expect("txn");
        assert_eq!(
            txn.compare[0].target_union,
            Some(compare::TargetUnion::ModRevision(0))
        );
        let ok = TxnResponse {
            header: header(10),
            succeeded: true,
            responses: vec![],
        };
        assert_eq!(w.check(&mut c, TXN, &ok.encode_to_vec()), Outcome::Ok);
        let txn = TxnRequest::decode(&w.call(&mut c, 1).body[5..]).expect("txn");
        assert_eq!(
            txn.compare[0].target_union,
            Some(compare::TargetUnion::ModRevision(10))
        );
        let conflict = TxnResponse {
            header: header(12),
            succeeded: false,
            responses: vec![tally_kvstore::proto::ResponseOp {
                response: Some(response_op::Response::ResponseRange(RangeResponse {
                    header: None,
                    kvs: vec![tally_kvstore::proto::KeyValue {
                        mod_revision: 12,
                        ..Default::default()
                    }],
                    more: false,
                    count: 1,
                })),
            }],
        };
        assert_eq!(
            w.check(&mut c, TXN, &conflict.encode_to_vec()),
            Outcome::Conflict
        );
        let txn = TxnRequest::decode(&w.call(&mut c, 2).body[5..]).expect("txn");
        assert_eq!(
            txn.compare[0].target_union,
            Some(compare::TargetUnion::ModRevision(12))
        );
    }

    #[test]
    fn lease_keepalive_grants_first() {
        let w = workload(&["lease-keepalive"]);
        let mut c = ClientState::new(3);
        let setup = w.setup(&c).expect("grant first");
        assert_eq!(setup.path, LEASE_GRANT);
        assert!(!setup.counted);
        let granted = LeaseGrantResponse {
            header: header(1),
            id: 77,
            ttl: 300,
            error: String::new(),
        };
        assert_eq!(
            w.check(&mut c, LEASE_GRANT, &granted.encode_to_vec()),
            Outcome::Ok
        );
        assert!(w.setup(&c).is_none());
        let call = w.call(&mut c, 0);
        assert!(call.first_message);
        assert_eq!(
            LeaseKeepAliveRequest::decode(&call.body[5..])
                .expect("ka")
                .id,
            77
        );
    }

    #[test]
    fn watch_values_carry_their_send_time() {
        let w = workload(&["watch", "--val-size", "4"]);
        let put = w.timestamped_put();
        assert_eq!(put.key, Bytes::from_static(WATCH_KEY));
        assert_eq!(put.value.len(), 8);
        assert!(watch_sent_ns(&put.value).is_some());
        assert_eq!(watch_sent_ns(b"short"), None);
    }

    #[test]
    fn leases_are_numbered_by_key_and_expire_together() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let expire_at = (now_ms + 30_000).to_string();
        let w = workload(&[
            "lease-grant",
            "--lease-id-base",
            "1000",
            "--key-start",
            "10",
            "--lease-expire-at-ms",
            &expire_at,
        ]);
        let mut c = ClientState::new(4);
        let call = w.call(&mut c, 5);
        assert_eq!(call.path, LEASE_GRANT);
        let grant = LeaseGrantRequest::decode(&call.body[5..]).expect("grant");
        assert_eq!(grant.id, 1015);
        assert!((29..=30).contains(&grant.ttl), "ttl {}", grant.ttl);

        let w = workload(&[
            "put",
            "--lease-id-base",
            "1000",
            "--key-start",
            "10",
            "--key-space-size",
            "4",
            "--sequential-keys",
        ]);
        let put = PutRequest::decode(&w.call(&mut c, 6).body[5..]).expect("put");
        assert_eq!(put.key, w.key(12));
        assert_eq!(put.lease, 1012);
    }

    #[test]
    fn watchers_watch_a_prefix_on_request() {
        assert!(workload(&["watch"]).watch_range_end().is_empty());
        let end = workload(&["watch", "--watch-prefix"]).watch_range_end();
        assert!(end.as_ref() > WATCH_KEY);
        assert_eq!(end.len(), WATCH_KEY.len());
        assert_eq!(end[..end.len() - 1], WATCH_KEY[..WATCH_KEY.len() - 1]);
    }
}
