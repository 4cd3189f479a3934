//! Client calls: each event of the client port to the call table, and each request message,
//! through the method table, to its service's handler on the context of that service.

use std::time::Instant;

use bytes::Bytes;

use super::Server;
use crate::client::{CallEvent, CallId, Code as GrpcCode, HttpRequestId};
use crate::server::calls::CallKind;
use crate::server::gateway::{self, Accepted};
use crate::server::rpc::methods::{self, Handler};
use crate::server::rpc::{
    learner_serves, serves_before_joining, status, status_from_kv, status_learner, status_no_leader,
};

impl Server {
    pub(super) fn drain_clients(&mut self) {
        while let Some(event) = self.calls.sink_mut().poll_call() {
            self.handle_call_event(event);
        }
        let mut http_requests = Vec::new();
        if let Some(http) = self.metrics_http.as_mut() {
            while let Some(event) = http.poll_call() {
                http_requests.push(event);
            }
        }
        for event in http_requests {
            if let CallEvent::Http { request, path, .. } = event {
                let (code, content_type, body) = self.member_view().http_response(&path);
                if let Some(http) = self.metrics_http.as_mut() {
                    http.respond_http(request, code, content_type, body);
                }
            }
        }
    }

    fn handle_call_event(&mut self, event: CallEvent) {
        match event {
            CallEvent::Opened { call, path } => {
                match methods::by_grpc_path(&path).map(|m| m.kind()) {
                    // etcd refuses every stream on a learner as it opens.
                    Some(kind) if self.is_learner() && !kind.is_unary() => {
                        self.calls.refuse(call, status_learner())
                    }
                    Some(kind) => self.calls.open(call, kind),
                    None => self.calls.refuse(
                        call,
                        status(GrpcCode::Unimplemented, &format!("unknown method {path}")),
                    ),
                }
            }
            CallEvent::Message { call, message } => self.handle_message(call, message),
            CallEvent::HalfClosed { call } => {
                self.calls.half_close(call);
                self.writes().finish_keep_alive_if_done(call);
                self.release_ended_calls();
            }
            CallEvent::Cancelled { call } => {
                self.calls.close(call);
                self.release_ended_calls();
            }
            CallEvent::SendReady { call } => self.calls.on_send_ready(call),
            CallEvent::Http {
                request,
                method,
                path,
                body,
                token,
            } => self.handle_http(request, (&method, &path, token), &body),
        }
    }

    /// An HTTP/1.1 request on the client port: a call of the JSON gateway, or one of the plain
    /// endpoints.
    fn handle_http(
        &mut self,
        request: HttpRequestId,
        (method, path, token): (&str, &str, Option<String>),
        body: &[u8],
    ) {
        match gateway::accept(method, path, body) {
            Accepted::NotGateway => {
                let (code, content_type, body) = self.member_view().http_response(path);
                self.calls.respond_http(request, code, content_type, body);
            }
            Accepted::Answer {
                code,
                content_type,
                body,
            } => self.calls.respond_http(request, code, content_type, body),
            Accepted::Call {
                kind,
                response,
                messages,
            } => {
                let call = self.calls.open_gateway(request, kind, response, token);
                for message in messages {
                    // A unary call answered (or a stream that failed) is closed: stop there.
                    if !self.calls.gateway_open(call) {
                        break;
                    }
                    self.handle_message(call, Bytes::from(message));
                }
            }
        }
    }

    /// Whether this member is a learner, which serves only what etcd lets a learner serve.
    fn is_learner(&self) -> bool {
        self.members
            .get(self.identity.member_id)
            .is_some_and(|member| member.is_learner)
    }

    fn handle_message(&mut self, call: CallId, message: Bytes) {
        let Some(kind) = self.calls.kind(call) else {
            return;
        };
        if self.is_learner() && !learner_serves(kind, &message) {
            return self.calls.reply_error(call, status_learner());
        }
        if !self.standing.joined() && !serves_before_joining(kind) {
            // Its store and membership are not its cluster's yet: whatever it answered would
            // be empty or wrong.
            return self.calls.reply_error(call, status_no_leader());
        }
        // With authentication off (the usual case) nothing about the caller is looked up.
        let caller = if self.kv.auth().enabled() {
            let token = self
                .calls
                .sink()
                .request_header(call, "token")
                .or_else(|| self.calls.gateway_token(call));
            let certificate_name = self.calls.sink().client_common_name(call);
            let who = (token, certificate_name);
            match self.auth.caller(who, self.kv.auth(), Instant::now()) {
                Ok(caller) => caller,
                Err(refused) => return self.calls.reply_error(call, refused),
            }
        } else {
            None
        };
        if let (Some(who), CallKind::Unary(method)) = (&caller, kind) {
            if method.needs_admin() {
                let checked = self.kv.auth().check_admin(&who.username, who.auth_revision);
                if let Err(denied) = checked {
                    return self.calls.reply_error(call, status_from_kv(&denied));
                }
            }
        }
        self.caller = caller;
        let handled = match methods::by_kind(kind).handler() {
            Handler::Kv(handle) => handle(&mut self.kv_service(), call, &message),
            Handler::Watch(handle) => handle(&mut self.watch_service(), call, &message),
            Handler::Cluster(handle) => handle(&mut self.cluster_service(), call, &message),
            Handler::Maintenance(handle) => handle(&mut self.maintenance_service(), call, &message),
            Handler::LeaderQuery(handle) => {
                handle(&mut self.leader_query_service(), call, &message)
            }
            Handler::Health(handle) => handle(&mut self.health_service(), call, &message),
            Handler::Coordination(handle) => {
                handle(&mut self.coordination_service(), call, &message)
            }
            Handler::Auth(handle) => handle(&mut self.auth_service(), call, &message),
        };
        // What the member proposes later on its own carries no caller.
        self.caller = None;
        if let Err(e) = handled {
            self.calls.reply_error(
                call,
                status(
                    GrpcCode::Internal,
                    &format!("grpc: error unmarshalling request: {e}"),
                ),
            );
        }
        // A call answered or cut off may leave what it held to let go of.
        self.release_ended_calls();
    }

    /// Lets go of what ended calls held: a watch stream's watchers, a waiting lock's key, a
    /// waiting campaign's candidacy, an observer.
    pub(super) fn release_ended_calls(&mut self) {
        while let Some((call, kind)) = self.calls.poll_ended() {
            match kind {
                CallKind::Watch => self.watch_service().cancel_watches_of(call),
                _ => self.coordination_service().on_call_ended(call, kind),
            }
        }
    }
}
