//! The Watch service: one bidirectional stream carries many watchers.

use prost::Message as _;
use tally_kvstore::WatchId;
use tally_kvstore::proto::{self, watch_request::RequestUnion};

use crate::grpc::CallId;
use crate::server::event_loop::Server;

impl Server {
    pub(in crate::server) fn handle_watch(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = proto::WatchRequest::decode(message)?;
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => match self.kv.watch_create(&create) {
                Ok(id) => {
                    self.watch_calls.insert(id, call);
                }
                Err(error) => {
                    // etcd answers a refused create with created + canceled and a reason.
                    let response = proto::WatchResponse {
                        watch_id: -1,
                        created: true,
                        canceled: true,
                        cancel_reason: error.etcd_message().to_string(),
                        ..proto::WatchResponse::default()
                    };
                    self.stream(call, response);
                }
            },
            Some(RequestUnion::CancelRequest(cancel)) => {
                if let Some(id) = self.watch_of(call, cancel.watch_id) {
                    let _ = self.kv.watch_cancel(id);
                }
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                let ids: Vec<WatchId> = self
                    .watch_calls
                    .iter()
                    .filter(|(_, c)| **c == call)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    let _ = self.kv.request_progress(id);
                }
            }
            None => {}
        }
        self.deliver_watch_events();
        Ok(())
    }

    fn watch_of(&self, call: CallId, wire_id: i64) -> Option<WatchId> {
        self.watch_calls
            .iter()
            .find(|(id, c)| **c == call && id.get() as i64 == wire_id)
            .map(|(id, _)| *id)
    }

    pub(in crate::server) fn cancel_watches_of(&mut self, call: CallId) {
        let ids: Vec<WatchId> = self
            .watch_calls
            .iter()
            .filter(|(_, c)| **c == call)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.watch_calls.remove(&id);
            let _ = self.kv.watch_cancel(id);
        }
    }

    /// Sends every queued watch response to its stream.
    pub(in crate::server) fn deliver_watch_events(&mut self) {
        while let Some((id, response)) = self.kv.poll_watch_event() {
            let Some(&call) = self.watch_calls.get(&id) else {
                continue;
            };
            if response.canceled {
                self.watch_calls.remove(&id);
            }
            if self.calls.contains_key(&call) {
                self.stream(call, response);
            }
        }
    }
}
