//! The file-backed log of one node.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tally_core::{
    ConfState, Entry, EntryKind, HardState, Persist, Recovered, Snapshot, SnapshotMeta,
};

// The file-backed log. One append-only file of records `[length u32][checksum u32][body]`:
// snapshots, entries and hard states, in the order a `Persist` lists them. A record whose
// length or checksum does not match ends the log (a torn write at a crash). Taking a snapshot
// rewrites the file without the entries it covers.

const RECORD_SNAPSHOT: u8 = 1;
const RECORD_ENTRY: u8 = 2;
const RECORD_HARD_STATE: u8 = 3;
const RECORD_BYTES_MAX: usize = 64 << 20;

pub(crate) struct FileLog {
    dir: PathBuf,
    file: File,
    /// What the file holds, kept to rewrite it when a snapshot compacts it.
    hard_state: HardState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl FileLog {
    /// Opens the log in `dir`, creating it if needed. Returns what it held, or `None` when it
    /// is new.
    pub(crate) fn open(dir: &Path) -> io::Result<(FileLog, Option<Recovered>)> {
        fs::create_dir_all(dir)?;
        let path = dir.join("log");
        let mut bytes = Vec::new();
        if let Ok(mut file) = File::open(&path) {
            file.read_to_end(&mut bytes)?;
        }
        let mut log = FileLog {
            dir: dir.to_path_buf(),
            file: OpenOptions::new().create(true).append(true).open(&path)?,
            hard_state: HardState::default(),
            snapshot: Snapshot::default(),
            entries: Vec::new(),
        };
        let valid = log.replay(&bytes);
        if valid < bytes.len() {
            // Cut the torn tail, so new records follow the last whole one.
            log.file.set_len(valid as u64)?;
            log.file.sync_all()?;
        }
        if valid == 0 {
            return Ok((log, None));
        }
        let recovered = Recovered::new(log.hard_state, log.snapshot.clone(), log.entries.clone());
        Ok((log, Some(recovered)))
    }

    /// Replays records into memory. Returns how many bytes hold whole, valid records.
    fn replay(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while let Some((body, next)) = read_record(bytes, at) {
            match body.split_first() {
                Some((&RECORD_SNAPSHOT, rest)) => self.put_snapshot(decode_snapshot(rest)),
                Some((&RECORD_ENTRY, rest)) => self.put_entry(decode_entry(rest)),
                Some((&RECORD_HARD_STATE, rest)) => self.hard_state = decode_hard_state(rest),
                _ => break,
            }
            at = next;
        }
        at
    }

    /// Writes one `Persist` and makes it durable: snapshot, entries, then hard state.
    pub(crate) fn write(&mut self, persist: &Persist) -> io::Result<()> {
        let mut out = Vec::new();
        if let Some(snapshot) = persist.snapshot() {
            push_record(&mut out, RECORD_SNAPSHOT, &encode_snapshot(snapshot));
            self.put_snapshot(snapshot.clone());
        }
        for entry in persist.entries() {
            push_record(&mut out, RECORD_ENTRY, &encode_entry(entry));
            self.put_entry(entry.clone());
        }
        if let Some(hard_state) = persist.hard_state() {
            push_record(&mut out, RECORD_HARD_STATE, &encode_hard_state(hard_state));
            self.hard_state = *hard_state;
        }
        self.file.write_all(&out)?;
        self.file.sync_data()
    }

    /// Stores a snapshot the state machine took, and drops the entries it covers by writing
    /// a new file and renaming it over the old one (the rename is atomic; the directory's
    /// fsync makes it durable).
    pub(crate) fn save_snapshot(&mut self, snapshot: Snapshot) -> io::Result<()> {
        let index = snapshot.meta().index();
        if index <= self.snapshot.meta().index() {
            return Ok(());
        }
        self.entries.retain(|entry| entry.index() > index);
        self.snapshot = snapshot;
        let mut out = Vec::new();
        push_record(&mut out, RECORD_SNAPSHOT, &encode_snapshot(&self.snapshot));
        for entry in &self.entries {
            push_record(&mut out, RECORD_ENTRY, &encode_entry(entry));
        }
        push_record(
            &mut out,
            RECORD_HARD_STATE,
            &encode_hard_state(&self.hard_state),
        );
        let temporary = self.dir.join("log.tmp");
        let mut file = File::create(&temporary)?;
        file.write_all(&out)?;
        file.sync_all()?;
        fs::rename(&temporary, self.dir.join("log"))?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(self.dir.join("log"))?;
        Ok(())
    }

    /// A snapshot from the leader replaces the whole log.
    fn put_snapshot(&mut self, snapshot: Snapshot) {
        self.entries.clear();
        self.snapshot = snapshot;
    }

    /// An entry at an index the log already has replaces it and everything after it.
    fn put_entry(&mut self, entry: Entry) {
        let keep = self.entries.partition_point(|e| e.index() < entry.index());
        self.entries.truncate(keep);
        self.entries.push(entry);
    }
}

fn push_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let length = body.len() as u32 + 1;
    let checksum = fnv1a(&[&[kind], body]);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&checksum.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
}

/// The record at `at`: its body (kind byte first) and where the next one starts.
fn read_record(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(at..at + 8)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let checksum = u32::from_le_bytes(header[4..].try_into().ok()?);
    if length == 0 || length > RECORD_BYTES_MAX {
        return None;
    }
    let body = bytes.get(at + 8..at + 8 + length)?;
    (fnv1a(&[body]) == checksum).then_some((body, at + 8 + length))
}

/// FNV-1a, 32 bits: enough to tell a torn write from a whole one in an example.
fn fnv1a(parts: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    hash
}

fn encode_entry(entry: &Entry) -> Vec<u8> {
    let kind = match entry.kind() {
        EntryKind::Normal => 0u8,
        EntryKind::ConfChange => 1,
        other => panic!("this log does not know entry kind {other:?}"),
    };
    let mut out = Vec::with_capacity(17 + entry.data().len());
    out.extend_from_slice(&entry.index().to_le_bytes());
    out.extend_from_slice(&entry.term().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(entry.data());
    out
}

fn decode_entry(body: &[u8]) -> Entry {
    let mut reader = Reader(body);
    let index = reader.u64();
    let term = reader.u64();
    let kind = if reader.u8() == 1 {
        EntryKind::ConfChange
    } else {
        EntryKind::Normal
    };
    Entry::new(index, term, kind, Bytes::copy_from_slice(reader.0))
}

fn encode_hard_state(hard_state: &HardState) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&hard_state.term().to_le_bytes());
    out.extend_from_slice(&hard_state.vote().to_le_bytes());
    out.extend_from_slice(&hard_state.commit().to_le_bytes());
    out
}

fn decode_hard_state(body: &[u8]) -> HardState {
    let mut reader = Reader(body);
    HardState::new(reader.u64(), reader.u64(), reader.u64())
}

fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let meta = snapshot.meta();
    let mut out = Vec::new();
    out.extend_from_slice(&meta.index().to_le_bytes());
    out.extend_from_slice(&meta.term().to_le_bytes());
    for list in [meta.conf().voters(), meta.conf().learners()] {
        out.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for id in list {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out.extend_from_slice(snapshot.data());
    out
}

fn decode_snapshot(body: &[u8]) -> Snapshot {
    let mut reader = Reader(body);
    let index = reader.u64();
    let term = reader.u64();
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let count = reader.u64();
        for _ in 0..count {
            list.push(reader.u64());
        }
    }
    let conf = ConfState::new(&lists[0], &lists[1]);
    Snapshot::new(
        SnapshotMeta::new(index, term, conf),
        Bytes::copy_from_slice(reader.0),
    )
}

/// Reads little-endian fields from a record that passed its checksum.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().expect("a checksummed record");
        self.0 = rest;
        *first
    }

    fn u64(&mut self) -> u64 {
        let (word, rest) = self.0.split_at(8);
        self.0 = rest;
        u64::from_le_bytes(word.try_into().expect("8 bytes"))
    }
}
