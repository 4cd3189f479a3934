//! The table against what it names: every JSON shape against the prost message it transcodes
//! (read from `tally_kvstore::proto`'s source, field numbers and nested messages), so the
//! gateway and the gRPC messages cannot drift apart.

use std::collections::{HashMap, HashSet};

use super::lookup::{by_gateway_path, by_grpc_path, by_kind, rows};
use crate::server::gateway::schema::{Kind, Message as JsonShape};

const PROTO_SOURCES: [&str; 10] = [
    include_str!("../../../../../kvstore/src/proto/kv.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_kv.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_lease.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_cluster.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_maintenance.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_watch.rs"),
    include_str!("../../../../../kvstore/src/proto/internal.rs"),
    include_str!("../../../../../kvstore/src/proto/v3lock.rs"),
    include_str!("../../../../../kvstore/src/proto/v3election.rs"),
    include_str!("../../../../../kvstore/src/proto/rpc_auth.rs"),
];

/// A message's fields by number: the message type of those that hold one.
type Fields = HashMap<u32, Option<String>>;

/// The last path segment of a field's type, inside `Option<…>` or `Vec<…>`.
fn type_name(ty: &str) -> String {
    let mut ty = ty.trim().trim_end_matches(',');
    for wrapper in ["Option<", "::prost::alloc::vec::Vec<", "Vec<"] {
        if let Some(inner) = ty.strip_prefix(wrapper) {
            ty = inner.strip_suffix('>').unwrap_or(inner);
        }
    }
    ty.rsplit("::").next().unwrap_or(ty).to_string()
}

fn numbers(attribute: &str, key: &str) -> Vec<u32> {
    let Some(at) = attribute.find(&format!("{key} = \"")) else {
        return Vec::new();
    };
    let rest = &attribute[at + key.len() + 4..];
    let end = rest.find('"').expect("closing quote");
    rest[..end]
        .split(',')
        .map(|n| n.trim().parse().expect("a field number"))
        .collect()
}

/// Every prost message (struct, or oneof enum as `module::Enum`) and its fields.
fn prost_messages() -> HashMap<String, Fields> {
    let mut messages: HashMap<String, Fields> = HashMap::new();
    for source in PROTO_SOURCES {
        let mut module: Option<String> = None;
        let mut current: Option<String> = None;
        let mut attribute = String::new();
        let mut pending: Option<String> = None;
        for line in source.lines() {
            let trimmed = line.trim();
            if line == "}" {
                (current, module) = (None, None);
                continue;
            }
            if let Some(name) = line.strip_prefix("pub mod ") {
                module = Some(name.trim_end_matches(" {").to_string());
                continue;
            }
            if let Some(declared) = line.strip_prefix("pub struct ") {
                // `pub struct Name {`, or `pub struct Name {}` for a message without fields.
                let name = declared
                    .split([' ', '{'])
                    .next()
                    .expect("a name")
                    .to_string();
                messages.entry(name.clone()).or_default();
                current = (!declared.ends_with("{}")).then_some(name);
                continue;
            }
            if let (Some(module), Some(name)) = (&module, trimmed.strip_prefix("pub enum ")) {
                current = Some(format!("{module}::{}", name.trim_end_matches(" {")));
                continue;
            }
            if trimmed.starts_with("#[prost(") || !attribute.is_empty() {
                attribute.push_str(trimmed);
                if attribute.ends_with(")]") {
                    pending = Some(std::mem::take(&mut attribute));
                }
                continue;
            }
            if trimmed.starts_with("///") || trimmed.starts_with("#[") {
                continue;
            }
            let (Some(name), Some(attribute)) = (&current, pending.take()) else {
                continue;
            };
            // The item after the attribute: a struct field or a oneof variant.
            let fields = messages.entry(name.clone()).or_default();
            if let Some(at) = attribute.find("oneof = \"") {
                let oneof = attribute[at + 9..].split('"').next().expect("oneof name");
                for tag in numbers(&attribute, "tags") {
                    fields.insert(tag, Some(oneof.to_string()));
                }
                continue;
            }
            // A field `pub name: Type,` or a oneof variant `Name(Type),`.
            let ty = match trimmed.strip_prefix("pub ") {
                Some(field) => field.split_once(':').map(|(_, ty)| ty).unwrap_or_default(),
                None => trimmed
                    .split_once('(')
                    .map(|(_, inner)| inner.trim_end_matches("),"))
                    .unwrap_or_default(),
            };
            let message = attribute
                .starts_with("#[prost(message")
                .then(|| type_name(ty));
            for tag in numbers(&attribute, "tag") {
                fields.insert(tag, message.clone());
            }
        }
    }
    messages
}

/// Checks that `shape` lists exactly the fields of `message`, and so on down nested messages.
fn check(
    message: &str,
    shape: &'static JsonShape,
    messages: &HashMap<String, Fields>,
    seen: &mut HashSet<(String, usize)>,
    problems: &mut Vec<String>,
) {
    if !seen.insert((message.to_string(), shape as *const JsonShape as usize)) {
        return;
    }
    let Some(fields) = messages.get(message) else {
        return problems.push(format!("no prost message {message}"));
    };
    // A oneof's variants are fields of the message that holds it, as in JSON.
    let mut flat: Fields = HashMap::new();
    for (&number, ty) in fields {
        match ty {
            Some(oneof) if oneof.contains("::") => {
                let variants = messages.get(oneof).cloned().unwrap_or_default();
                flat.insert(number, variants.get(&number).cloned().flatten());
            }
            other => {
                flat.insert(number, other.clone());
            }
        }
    }
    let listed: HashSet<u32> = shape.fields.iter().map(|f| f.number).collect();
    let declared: HashSet<u32> = flat.keys().copied().collect();
    if listed != declared {
        let mut missing: Vec<_> = declared.difference(&listed).collect();
        let mut extra: Vec<_> = listed.difference(&declared).collect();
        missing.sort();
        extra.sort();
        problems.push(format!(
            "{message}: the JSON shape lacks fields {missing:?} and has unknown fields {extra:?}"
        ));
    }
    for field in shape.fields {
        if let Kind::Message(sub) = &field.kind {
            match flat.get(&field.number) {
                Some(Some(sub_message)) => check(sub_message, sub, messages, seen, problems),
                _ => problems.push(format!(
                    "{message}: JSON field {} ({}) is a message, the prost field is not",
                    field.number, field.name
                )),
            }
        }
    }
}

#[test]
fn every_json_shape_lists_the_fields_of_its_prost_message() {
    let messages = prost_messages();
    assert!(messages.contains_key("RangeRequest"), "the sources parsed");
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for row in rows() {
        let Some((request, response)) = row.json else {
            continue;
        };
        for (ty, shape) in [
            ((row.request_type)(), request),
            ((row.response_type)(), response),
        ] {
            let name = ty.rsplit("::").next().expect("a type name");
            check(name, shape, &messages, &mut seen, &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn paths_and_kinds_name_one_row_each() {
    let mut grpc = HashSet::new();
    let mut gateway = HashSet::new();
    for row in rows() {
        assert!(grpc.insert(row.grpc_path), "{} twice", row.grpc_path);
        for path in row.gateway_paths {
            assert!(gateway.insert(*path), "{path} twice");
            assert!(std::ptr::eq(by_gateway_path(path).expect("found"), row));
        }
        assert!(std::ptr::eq(
            by_grpc_path(row.grpc_path).expect("found"),
            row
        ));
        assert!(std::ptr::eq(by_kind(row.kind), row));
        assert_eq!(row.json.is_some(), !row.gateway_paths.is_empty());
    }
}

/// etcd 3.4's rule, as recorded from it (tests/fixtures/etcd34/header.tsv): the KV, Lease and
/// Watch services, Status, Hash and HashKV fill the whole header; the Cluster service leaves
/// out the revision; Alarm, Defragment, MoveLeader and Snapshot send none.
#[test]
fn each_response_carries_the_header_etcd_fills() {
    use crate::server::rpc::respond::HeaderFill;
    for row in rows() {
        let service = row.grpc_path.split('/').nth(1).expect("a service");
        let method = row.grpc_path.rsplit('/').next().expect("a method");
        let expected = match (service, method) {
            ("etcdserverpb.Cluster", _) => HeaderFill::NoRevision,
            ("etcdserverpb.Maintenance", "Alarm" | "Defragment" | "MoveLeader" | "Snapshot") => {
                HeaderFill::Absent
            }
            ("grpc.health.v1.Health", _) => HeaderFill::Absent,
            _ => HeaderFill::Full,
        };
        assert_eq!(row.header, expected, "{}", row.grpc_path);
    }
}
