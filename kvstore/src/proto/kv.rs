//! mvccpb: `KeyValue` and `Event`, with the field numbers of etcd's `api/mvccpb/kv.proto`.

use bytes::Bytes;

/// One version of one key, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// The revision of the key's last creation.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// The revision of the key's last modification.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Writes since the key was created (1 after its creation); a delete resets it to 0.
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "bytes", tag = "5")]
    pub value: Bytes,
    /// The lease the key is attached to (0: none).
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// The kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum EventType {
    /// A put: `kv` is the key's new version.
    Put = 0,
    /// A delete: `kv` holds the key and the revision of the delete.
    Delete = 1,
}

/// One change to one key, as etcd's `mvccpb.Event`.
#[derive(Clone, PartialEq, Eq, ::prost::Message)]
pub struct Event {
    /// An [`EventType`].
    #[prost(enumeration = "EventType", tag = "1")]
    pub r#type: i32,
    /// The key after the event.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
    /// The key before the event, when the watcher asked for `prev_kv`.
    #[prost(message, optional, tag = "3")]
    pub prev_kv: Option<KeyValue>,
}
