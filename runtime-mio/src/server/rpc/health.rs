//! gRPC's standard health service (`grpc.health.v1.Health`), which etcd serves on its client
//! port for load balancers and probes: the overall service (named "") is SERVING while the
//! member runs, as etcd 3.4 reports it, and NOT_SERVING until it has joined its cluster (so a
//! balancer sends no client to a member that answers only "no leader"); any other name is
//! unknown.

use bytes::Bytes;
use prost::Message as _;

use super::status::status;
use crate::client::{CallId, Code as GrpcCode};
use crate::server::calls::Calls;

/// `HealthCheckResponse.ServingStatus` values.
const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;
const SERVICE_UNKNOWN: i32 = 3;

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(super) struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub(super) struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

fn encoded(status: i32) -> Bytes {
    Bytes::from(HealthCheckResponse { status }.encode_to_vec())
}

/// What the health service needs: the calls, and whether the member has joined its cluster.
pub(in crate::server) struct HealthService<'a> {
    pub(in crate::server) calls: &'a mut Calls,
    pub(in crate::server) joined: bool,
}

impl HealthService<'_> {
    fn overall_status(&self) -> i32 {
        if self.joined { SERVING } else { NOT_SERVING }
    }

    /// `Health/Check`: the overall service's status, NOT_FOUND for any other name.
    pub(in crate::server) fn health_check(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = HealthCheckRequest::decode(message)?;
        if request.service.is_empty() {
            let status = self.overall_status();
            self.calls.reply_encoded(call, encoded(status));
        } else {
            self.calls
                .reply_error(call, status(GrpcCode::NotFound, "unknown service"));
        }
        Ok(())
    }

    /// `Health/Watch`: the status once (SERVICE_UNKNOWN for a name other than the overall
    /// service's), then the stream stays open.
    pub(in crate::server) fn health_watch(
        &mut self,
        call: CallId,
        message: &[u8],
    ) -> Result<(), prost::DecodeError> {
        let request = HealthCheckRequest::decode(message)?;
        let status = if request.service.is_empty() {
            self.overall_status()
        } else {
            SERVICE_UNKNOWN
        };
        self.calls.stream_encoded(call, encoded(status));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::{HealthCheckRequest, SERVING, encoded};

    #[test]
    fn messages_have_grpcs_field_numbers() {
        // status = 1 (varint): what etcd 3.4 sends for SERVING.
        assert_eq!(&encoded(SERVING)[..], &[0x08, 0x01]);
        let request = HealthCheckRequest::decode(&[0x0a, 0x03, b'f', b'o', b'o'][..]).unwrap();
        assert_eq!(request.service, "foo");
    }
}
