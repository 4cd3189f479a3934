//! The Watch service: one bidirectional stream carries many watchers.

use prost::Message as _;
use tally_core::Node;
use tally_kvstore::KvStore;
use tally_kvstore::proto::{self, PermissionType, RequestHeader, watch_request::RequestUnion};

use super::respond::{HeaderFill, Respond, respond_through_fields};
use super::watch_streams::{WatchIdError, WatchStreams};
use crate::client::CallId;
use crate::server::calls::Calls;
use crate::server::identity::Identity;

/// What the Watch service needs: the store's watchers and which stream each belongs to.
pub(in crate::server) struct WatchService<'a> {
    pub(in crate::server) identity: &'a Identity,
    pub(in crate::server) node: &'a Node,
    pub(in crate::server) kv: &'a mut KvStore,
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) watch_streams: &'a mut WatchStreams,
    /// Who the call is, while authentication is on: a watch reads what it watches.
    pub(in crate::server) caller: Option<RequestHeader>,
}

respond_through_fields!(WatchService);

impl WatchService<'_> {
    pub(in crate::server) fn handle_watch(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = proto::WatchRequest::decode(message)?;
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => {
                let permitted = self.caller.as_ref().map_or(Ok(()), |who| {
                    self.kv.auth().check(
                        &who.username,
                        who.auth_revision,
                        PermissionType::Read,
                        &create.key,
                        &create.range_end,
                    )
                });
                let created = permitted
                    .map_err(|denied| denied.etcd_message())
                    .and_then(|()| {
                        self.watch_streams
                            .pick_id(call, create.watch_id)
                            .map_err(WatchIdError::etcd_message)
                    });
                let created = created.and_then(|wire_id| {
                    let id = self
                        .kv
                        .watch_create(&create)
                        .map_err(|error| error.etcd_message())?;
                    self.watch_streams.insert(call, wire_id, id);
                    Ok(())
                });
                if let Err(reason) = created {
                    // etcd answers a refused create with created + canceled and a reason.
                    let response = proto::WatchResponse {
                        watch_id: -1,
                        created: true,
                        canceled: true,
                        cancel_reason: reason.to_string(),
                        ..proto::WatchResponse::default()
                    };
                    self.stream(call, response);
                }
            }
            Some(RequestUnion::CancelRequest(cancel)) => {
                if let Some(id) = self.watch_streams.find(call, cancel.watch_id) {
                    let _ = self.kv.watch_cancel(id);
                }
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                for id in self.watch_streams.of_stream(call) {
                    let _ = self.kv.request_progress(id);
                }
            }
            None => {}
        }
        self.deliver_watch_events();
        Ok(())
    }

    /// Cancels the watchers of a watch stream that ended.
    pub(in crate::server) fn cancel_watches_of(&mut self, call: CallId) {
        for id in self.watch_streams.remove_stream(call) {
            let _ = self.kv.watch_cancel(id);
        }
    }

    /// Sends every queued watch response to its stream.
    pub(in crate::server) fn deliver_watch_events(&mut self) {
        while let Some((id, mut response)) = self.kv.poll_watch_event() {
            let Some((call, wire_id)) = self.watch_streams.get(id) else {
                continue;
            };
            if response.canceled {
                self.watch_streams.remove(id);
            }
            if !self.calls.is_open(call) {
                continue;
            }
            response.watch_id = wire_id;
            if response.compact_revision != 0 {
                // etcd's answer to a watch from a compacted revision carries no revision.
                self.stream_with(call, response, HeaderFill::NoRevision);
            } else {
                self.stream(call, response);
            }
        }
    }
}
