//! Limits and settings of the client-facing server.

/// Settings of a [`super::GrpcServer`]. Every limit ends in `_max`; build with `Default` and
/// the `with_*` setters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcConfig {
    connections_max: usize,
    streams_per_connection_max: u32,
    request_bytes_max: usize,
    pending_calls_max: usize,
    pending_events_max: usize,
    pending_event_bytes_max: usize,
    pending_send_bytes_max: usize,
    stream_send_buffer_bytes_max: usize,
    stream_window_bytes: u32,
    connection_window_bytes: u32,
    frame_bytes_max: u32,
    header_list_bytes_max: u32,
    http1_request_bytes_max: usize,
    http1_body_bytes_max: usize,
    tls_buffer_bytes_max: usize,
    handshake_ms_max: u64,
    idle_ms_max: u64,
    keepalive_interval_ms: u64,
    keepalive_ack_ms_max: u64,
    client_ping_interval_ms_min: u64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            connections_max: 1024,
            // Watches multiplex on one connection; etcd itself sets no practical limit.
            streams_per_connection_max: 1024,
            // etcd's --max-request-bytes default.
            request_bytes_max: 1_572_864,
            pending_calls_max: 1 << 16,
            pending_events_max: 4096,
            pending_event_bytes_max: 64 << 20,
            pending_send_bytes_max: 4 << 20,
            stream_send_buffer_bytes_max: 1 << 20,
            // h2's 64 KiB defaults starve many small concurrent calls (see DESIGN.md).
            stream_window_bytes: 1 << 20,
            connection_window_bytes: 16 << 20,
            frame_bytes_max: 64 << 10,
            header_list_bytes_max: 16 << 10,
            http1_request_bytes_max: 8 << 10,
            // JSON with base64 keys and values for a request of `request_bytes_max`.
            http1_body_bytes_max: 4 << 20,
            tls_buffer_bytes_max: 256 << 10,
            // Long enough for a TLS handshake over a slow link, short enough that sockets
            // that never get anywhere do not pile up between evictions.
            handshake_ms_max: 5_000,
            // etcd never closes an idle connection; its clients reconnect on the GOAWAY this
            // sends, so a few minutes only costs an idle client one reconnect.
            idle_ms_max: 5 * 60 * 1000,
            // etcd's --grpc-keepalive-interval, --grpc-keepalive-timeout and
            // --grpc-keepalive-min-time defaults.
            keepalive_interval_ms: 2 * 60 * 60 * 1000,
            keepalive_ack_ms_max: 20_000,
            client_ping_interval_ms_min: 5_000,
        }
    }
}

macro_rules! setting {
    ($(#[$doc:meta])* $field:ident, $setter:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $setter(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }

        $(#[$doc])*
        pub fn $field(&self) -> $ty {
            self.$field
        }
    };
}

impl GrpcConfig {
    setting!(
        /// Open client connections (gRPC and HTTP/1). A connection accepted past it closes
        /// the one idle longest (no open stream) to make room; only when every connection has
        /// an open stream is the new one closed at once. `tallyd` derives it from the open
        /// files limit (see [`super::connections_max_for_open_files`]).
        connections_max, with_connections_max, usize
    );
    setting!(
        /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: open calls per connection.
        streams_per_connection_max, with_streams_per_connection_max, u32
    );
    setting!(
        /// The largest request message; larger ones end their call with RESOURCE_EXHAUSTED.
        request_bytes_max, with_request_bytes_max, usize
    );
    setting!(
        /// Calls opened and not yet finished by the application, over all connections; more
        /// are refused with RESOURCE_EXHAUSTED.
        pending_calls_max, with_pending_calls_max, usize
    );
    setting!(
        /// Events queued for `poll_call`; past it, connections stop reading requests
        /// (flow control pushes back on the clients) until the application drains.
        pending_events_max, with_pending_events_max, usize
    );
    setting!(
        /// Message bytes queued for `poll_call`, with the same back-pressure.
        pending_event_bytes_max, with_pending_event_bytes_max, usize
    );
    setting!(
        /// Response bytes queued per call before `send_message` returns `Backpressure`; a
        /// message is always taken when the call's queue is empty.
        pending_send_bytes_max, with_pending_send_bytes_max, usize
    );
    setting!(
        /// h2's per-stream send buffer (`max_send_buffer_size`).
        stream_send_buffer_bytes_max, with_stream_send_buffer_bytes_max, usize
    );
    setting!(
        /// Initial HTTP/2 flow-control window per stream.
        stream_window_bytes, with_stream_window_bytes, u32
    );
    setting!(
        /// Initial HTTP/2 flow-control window per connection.
        connection_window_bytes, with_connection_window_bytes, u32
    );
    setting!(
        /// HTTP/2 SETTINGS_MAX_FRAME_SIZE (16 KiB to 16 MiB - 1).
        frame_bytes_max, with_frame_bytes_max, u32
    );
    setting!(
        /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE.
        header_list_bytes_max, with_header_list_bytes_max, u32
    );
    setting!(
        /// The largest HTTP/1.1 request head (request line and headers).
        http1_request_bytes_max, with_http1_request_bytes_max, usize
    );
    setting!(
        /// The largest HTTP/1.1 request body (the gateway's JSON); larger ones get 413.
        http1_body_bytes_max, with_http1_body_bytes_max, usize
    );
    setting!(
        /// Encrypted bytes rustls buffers per connection before writes push back.
        tls_buffer_bytes_max, with_tls_buffer_bytes_max, usize
    );
    setting!(
        /// Milliseconds a connection may take to settle its protocol (TLS handshake, HTTP/2
        /// preface and the client's SETTINGS, or an HTTP/1 request head) before it is closed;
        /// 0 disables the limit. Measured by `GrpcServer::tick`.
        handshake_ms_max, with_handshake_ms_max, u64
    );
    setting!(
        /// Milliseconds a settled connection may go with no open stream and nothing received
        /// before it is closed (HTTP/2 with GOAWAY NO_ERROR first); 0 disables the limit.
        idle_ms_max, with_idle_ms_max, u64
    );
    setting!(
        /// etcd's `--grpc-keepalive-interval`: milliseconds with nothing received after which
        /// the server PINGs an HTTP/2 connection; 0 sends no keep-alive pings.
        keepalive_interval_ms, with_keepalive_interval_ms, u64
    );
    setting!(
        /// etcd's `--grpc-keepalive-timeout`: milliseconds after a keep-alive PING within
        /// which something must arrive, else the connection is closed.
        keepalive_ack_ms_max, with_keepalive_ack_ms_max, u64
    );
    setting!(
        /// etcd's `--grpc-keepalive-min-time`: the least milliseconds between a client's PINGs
        /// while it has a stream open; more often is a strike, and past
        /// `liveness::PING_STRIKES_MAX` strikes the connection gets GOAWAY ENHANCE_YOUR_CALM.
        client_ping_interval_ms_min, with_client_ping_interval_ms_min, u64
    );
}
