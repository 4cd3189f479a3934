//! The one table of the calls tallyd serves: for each, its gRPC path, its paths on etcd's JSON
//! gateway, its request and response types (and their JSON shapes), whether etcd puts a header
//! in its response, and its handler. Adding an etcd method is a row here and its handler.
//!
//! The gRPC dispatcher looks calls up by path ([`by_grpc_path`]), the gateway by its path
//! ([`by_gateway_path`]), and every message is handed to the row's handler. A test checks each
//! row's JSON shapes against the prost messages they transcode.

mod auth_rows;
mod coordination_rows;
mod etcd_rows;
mod lookup;
mod row;
#[cfg(test)]
mod tests;

pub(in crate::server) use lookup::{by_gateway_path, by_grpc_path, by_kind};
pub(in crate::server) use row::Handler;
