//! Finding a call's row: by gRPC path, by kind, by gateway path, over every row file.

use super::row::MethodRow;
use super::{auth_rows, coordination_rows, etcd_rows};
use crate::server::calls::CallKind;

/// Every row, by the file it is in.
static TABLES: [&[MethodRow]; 3] = [&etcd_rows::ROWS, &coordination_rows::ROWS, &auth_rows::ROWS];

/// Every row of the table.
pub(super) fn rows() -> impl Iterator<Item = &'static MethodRow> {
    TABLES.iter().flat_map(|table| table.iter())
}

/// The call a gRPC path names.
pub(in crate::server) fn by_grpc_path(path: &str) -> Option<&'static MethodRow> {
    rows().find(|row| row.grpc_path == path)
}

/// The row of a call kind (every kind has one).
pub(in crate::server) fn by_kind(kind: CallKind) -> &'static MethodRow {
    rows()
        .find(|row| row.kind == kind)
        .expect("every call kind is in the table")
}

/// The call a gateway path (after `/v3/`) names.
pub(in crate::server) fn by_gateway_path(path: &str) -> Option<&'static MethodRow> {
    rows().find(|row| row.gateway_paths.contains(&path))
}
