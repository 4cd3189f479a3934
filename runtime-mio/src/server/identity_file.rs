//! A member's identity, kept in its data directory from the moment it bootstraps or joins.
//!
//! As in etcd, once a member has started, who it is (member ID, cluster ID) and who the cluster
//! was when it started (the initial member table) come from its data directory, never again
//! from `--initial-cluster`, `--initial-cluster-token` or `--initial-cluster-state`: a restart
//! with other values of those flags must not give the member another ID (its peers would refuse
//! it) or another member list.
//!
//! The file is `<data-dir>/member/identity`: [`MAGIC`], an encoded [`IdentityRecord`], and the
//! CRC-32 of both (little endian). It is written once, atomically (temporary file, fsync,
//! rename, fsync of the directory).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;

use super::error::{ServerError, io_error};
use super::identity::Identity;
use super::members::Members;

const MAGIC: &[u8; 8] = b"TALLYID1";
const CRC_BYTES: usize = 4;
/// A member table of thousands of members fits many times over; anything larger is damage.
const FILE_BYTES_MAX: u64 = 4 << 20;

#[derive(Clone, PartialEq, ::prost::Message)]
struct IdentityRecord {
    #[prost(uint64, tag = "1")]
    member_id: u64,
    #[prost(uint64, tag = "2")]
    cluster_id: u64,
    #[prost(string, tag = "3")]
    token: String,
    /// [`Members::encode`] of the initial member table.
    #[prost(bytes = "vec", tag = "4")]
    initial_members: Vec<u8>,
}

pub(super) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join("identity")
}

/// The identity stored in `data_dir`, or `None` when it holds none (a new member, or a data
/// directory written before identities were kept).
pub(super) fn load(data_dir: &Path) -> Result<Option<Identity>, ServerError> {
    let file = path(data_dir);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(format!("read {}", file.display()))(e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|why| ServerError::DataDir(format!("{}: {why}", file.display())))
}

fn decode(bytes: &[u8]) -> Result<Identity, String> {
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(format!(
            "{} bytes, more than an identity file holds",
            bytes.len()
        ));
    }
    if bytes.len() < MAGIC.len() + CRC_BYTES || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a tally identity file".into());
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
    let stored_crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    if crc32fast::hash(body) != stored_crc {
        return Err("checksum mismatch: the file is damaged".into());
    }
    let record = IdentityRecord::decode(&body[MAGIC.len()..]).map_err(|e| e.to_string())?;
    let initial = Members::decode(&record.initial_members)
        .ok_or_else(|| "its member table is damaged".to_string())?;
    if record.member_id == 0 || initial.get(record.member_id).is_none() {
        return Err(format!(
            "member {:x} is not in its own initial member table",
            record.member_id
        ));
    }
    Ok(Identity {
        member_id: record.member_id,
        cluster_id: record.cluster_id,
        token: record.token,
        initial,
    })
}

fn encode(identity: &Identity) -> Vec<u8> {
    let record = IdentityRecord {
        member_id: identity.member_id,
        cluster_id: identity.cluster_id,
        token: identity.token.clone(),
        initial_members: identity.initial.encode().to_vec(),
    };
    let mut bytes = MAGIC.to_vec();
    record
        .encode(&mut bytes)
        .expect("a Vec grows to fit a message");
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// Writes `identity` into `data_dir`, atomically, before the member serves anything.
pub(super) fn store(data_dir: &Path, identity: &Identity) -> Result<(), ServerError> {
    let file = path(data_dir);
    let dir = file.parent().expect("the identity file is in member/");
    std::fs::create_dir_all(dir).map_err(io_error(format!("create {}", dir.display())))?;
    let temporary = dir.join("identity.tmp");
    let mut out = std::fs::File::create(&temporary)
        .map_err(io_error(format!("create {}", temporary.display())))?;
    out.write_all(&encode(identity))
        .and_then(|()| out.sync_all())
        .map_err(io_error(format!("write {}", temporary.display())))?;
    std::fs::rename(&temporary, &file)
        .map_err(io_error(format!("rename to {}", file.display())))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(format!("sync {}", dir.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_kvstore::proto::Member;

    fn identity() -> Identity {
        let member = |id: u64, name: &str| Member {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://127.0.0.1:{}", 2380 + id)],
            client_urls: Vec::new(),
            is_learner: false,
        };
        Identity {
            member_id: 2,
            cluster_id: 77,
            token: "token-1".into(),
            initial: Members::new(77, [member(1, "a"), member(2, "b"), member(3, "c")]),
        }
    }

    #[test]
    fn an_identity_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("tally-identity-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load(&dir).expect("no file is no identity").is_none());
        store(&dir, &identity()).expect("store");
        let stored = load(&dir).expect("load").expect("stored");
        assert_eq!(stored.member_id, 2);
        assert_eq!(stored.cluster_id, 77);
        assert_eq!(stored.initial, identity().initial);
        assert_eq!(stored.token, "token-1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_files_are_refused_never_trusted() {
        let good = encode(&identity());
        assert!(decode(&good).is_ok());
        for at in [0, MAGIC.len(), good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "a flipped byte at {at} passed");
        }
        assert!(decode(&good[..good.len() - 1]).is_err());
        assert!(decode(b"").is_err());
        let mut stranger = identity();
        stranger.member_id = 9;
        assert!(
            decode(&encode(&stranger))
                .unwrap_err()
                .contains("not in its own initial member table")
        );
    }
}
