//! The rows of etcd's Lock and Election services.

use prost::Message as _;
use tally_kvstore::proto;

use super::row::{Handler, MethodRow, handled, row, shapes, unary};
use crate::server::calls::{CallKind, Method};
use crate::server::gateway::schema_coordination as json;

pub(super) static ROWS: [MethodRow; 7] = [
    row::<proto::LockRequest, proto::LockResponse>(
        unary(Method::Lock),
        "/v3lockpb.Lock/Lock",
        &["lock/lock"],
        shapes(&json::LOCK_REQUEST, &json::LOCK_RESPONSE),
        handled!(Coordination, lock, LockRequest),
    ),
    row::<proto::UnlockRequest, proto::UnlockResponse>(
        unary(Method::Unlock),
        "/v3lockpb.Lock/Unlock",
        &["lock/unlock"],
        shapes(&json::UNLOCK_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, unlock, UnlockRequest),
    ),
    row::<proto::CampaignRequest, proto::CampaignResponse>(
        unary(Method::Campaign),
        "/v3electionpb.Election/Campaign",
        &["election/campaign"],
        shapes(&json::CAMPAIGN_REQUEST, &json::CAMPAIGN_RESPONSE),
        handled!(Coordination, campaign, CampaignRequest),
    ),
    row::<proto::ProclaimRequest, proto::ProclaimResponse>(
        unary(Method::Proclaim),
        "/v3electionpb.Election/Proclaim",
        &["election/proclaim"],
        shapes(&json::PROCLAIM_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, proclaim, ProclaimRequest),
    ),
    row::<proto::LeaderRequest, proto::LeaderResponse>(
        unary(Method::Leader),
        "/v3electionpb.Election/Leader",
        &["election/leader"],
        shapes(&json::LEADER_REQUEST, &json::LEADER_RESPONSE),
        handled!(Coordination, leader, LeaderRequest),
    ),
    row::<proto::ResignRequest, proto::ResignResponse>(
        unary(Method::Resign),
        "/v3electionpb.Election/Resign",
        &["election/resign"],
        shapes(&json::RESIGN_REQUEST, &json::HEADER_ONLY),
        handled!(Coordination, resign, ResignRequest),
    ),
    row::<proto::LeaderRequest, proto::LeaderResponse>(
        CallKind::ElectionObserve,
        "/v3electionpb.Election/Observe",
        &["election/observe"],
        shapes(&json::LEADER_REQUEST, &json::LEADER_RESPONSE),
        handled!(Coordination, observe, LeaderRequest),
    ),
];
