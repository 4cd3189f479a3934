//! The cluster's member table: ids, names and URLs, kept identical on every member because it
//! changes only through applied entries (membership changes and published attributes).

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message as _;
use tally_kvstore::proto::Member;

/// etcd derives a member's id from its peer URLs and the cluster token; so do we (SHA-256
/// instead of SHA-1), so `member add` and the new member's own start agree on the id.
pub fn member_id(peer_urls: &[String], token: &str) -> u64 {
    let mut sorted = peer_urls.to_vec();
    sorted.sort();
    let mut input = sorted.join(",").into_bytes();
    input.extend_from_slice(token.as_bytes());
    first_u64(&input).max(1)
}

/// The cluster id: a hash of the initial member ids and the token.
pub fn cluster_id(member_ids: &[u64], token: &str) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut input: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
    input.extend_from_slice(token.as_bytes());
    first_u64(&input).max(1)
}

fn first_u64(input: &[u8]) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, input);
    u64::from_le_bytes(
        digest.as_ref()[..8]
            .try_into()
            .expect("sha256 has 32 bytes"),
    )
}

/// Every known member, by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Members {
    cluster_id: u64,
    members: BTreeMap<u64, Member>,
}

impl Members {
    pub fn new(cluster_id: u64, members: impl IntoIterator<Item = Member>) -> Self {
        Members {
            cluster_id,
            members: members.into_iter().map(|m| (m.id, m)).collect(),
        }
    }

    pub fn get(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn list(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.members.keys().copied()
    }

    pub fn upsert(&mut self, member: Member) {
        self.members.insert(member.id, member);
    }

    pub fn remove(&mut self, id: u64) -> Option<Member> {
        self.members.remove(&id)
    }

    /// Published attributes (name, client URLs, peer URLs) take effect on apply; empty
    /// fields leave the current value.
    pub fn apply_attributes(&mut self, update: &Member) {
        if let Some(member) = self.members.get_mut(&update.id) {
            if !update.name.is_empty() {
                member.name = update.name.clone();
            }
            if !update.client_urls.is_empty() {
                member.client_urls = update.client_urls.clone();
            }
            if !update.peer_urls.is_empty() {
                member.peer_urls = update.peer_urls.clone();
            }
        }
    }

    pub fn set_learner(&mut self, id: u64, is_learner: bool) {
        if let Some(member) = self.members.get_mut(&id) {
            member.is_learner = is_learner;
        }
    }

    pub fn encode(&self) -> Bytes {
        let list = MemberTable {
            cluster_id: self.cluster_id,
            members: self.list(),
        };
        Bytes::from(list.encode_to_vec())
    }

    pub fn decode(data: &[u8]) -> Option<Members> {
        let table = MemberTable::decode(data).ok()?;
        Some(Members::new(table.cluster_id, table.members))
    }
}

/// The member table as it is stored in snapshots.
#[derive(Clone, PartialEq, ::prost::Message)]
struct MemberTable {
    #[prost(uint64, tag = "1")]
    cluster_id: u64,
    #[prost(message, repeated, tag = "2")]
    members: Vec<Member>,
}

/// How many voting members may fail: logged at start and on every membership change, and
/// exported on `/metrics` (`tally_cluster_fault_tolerance`), never in Status's errors, which
/// etcd keeps for real errors.
pub(super) fn log_fault_tolerance(voters: usize) {
    if voters == 0 {
        return;
    }
    eprintln!(
        "tallyd: fault tolerance: {} of {voters} voting members may fail",
        fault_tolerance(voters)
    );
    if voters % 2 == 0 {
        eprintln!(
            "tallyd: warning: the cluster has an even number of voting members ({voters}): one more member adds no fault tolerance"
        );
    }
}

/// Voting members that may fail with a quorum left.
pub(super) fn fault_tolerance(voters: usize) -> usize {
    voters.saturating_sub(1) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_order_independent() {
        let a = member_id(
            &[
                "http://127.0.0.1:2380".into(),
                "http://10.0.0.1:2380".into(),
            ],
            "t",
        );
        let b = member_id(
            &[
                "http://10.0.0.1:2380".into(),
                "http://127.0.0.1:2380".into(),
            ],
            "t",
        );
        assert_eq!(a, b);
        assert_ne!(a, member_id(&["http://127.0.0.1:2380".into()], "t"));
        assert_ne!(
            a,
            member_id(
                &[
                    "http://127.0.0.1:2380".into(),
                    "http://10.0.0.1:2380".into()
                ],
                "u"
            )
        );
    }

    #[test]
    fn member_table_round_trips() {
        let member = Member {
            id: 7,
            name: "a".into(),
            peer_urls: vec!["http://x:1".into()],
            client_urls: vec![],
            is_learner: true,
        };
        let members = Members::new(9, [member]);
        assert_eq!(Members::decode(&members.encode()), Some(members));
    }
}
