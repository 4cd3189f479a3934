//! Who this member is and who the initial cluster is: from the flags, or from the data
//! directory's identity file once the member has started.

use tally_kvstore::proto::Member;

use super::flags::Flags;
use super::members::{Members, cluster_id, member_id};

/// Who this member is and who the initial cluster is.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub(super) member_id: u64,
    pub(super) cluster_id: u64,
    /// `--initial-cluster-token` as the cluster was started with: peers' hellos carry it, and
    /// new members' IDs derive from it.
    pub(super) token: String,
    pub(super) initial: Members,
}

pub(super) fn identity(flags: &Flags) -> Identity {
    let token = flags.initial_cluster_token();
    let mut initial = Vec::new();
    for (name, urls) in flags.initial_cluster() {
        let peer_urls: Vec<String> = urls.iter().map(ToString::to_string).collect();
        let id = member_id(&peer_urls, token);
        let client_urls = if name == flags.name() {
            flags
                .advertise_client_urls()
                .iter()
                .map(ToString::to_string)
                .collect()
        } else {
            Vec::new()
        };
        initial.push(Member {
            id,
            name: name.clone(),
            peer_urls,
            client_urls,
            is_learner: false,
        });
    }
    let me = initial
        .iter()
        .find(|m| m.name == flags.name())
        .map(|m| m.id)
        .expect("flags checked that --name is in --initial-cluster");
    let ids: Vec<u64> = initial.iter().map(|m| m.id).collect();
    let cluster = cluster_id(&ids, token);
    Identity {
        member_id: me,
        cluster_id: cluster,
        token: token.to_string(),
        initial: Members::new(cluster, initial),
    }
}
