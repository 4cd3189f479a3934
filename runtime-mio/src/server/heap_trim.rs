//! Gives the heap's free pages back to the OS after the member freed much at once.
//!
//! glibc's malloc keeps freed memory that is not at the top of its heap. Several things free
//! a lot of it in the middle: a snapshot drops its copy of the store's key index (about 80
//! bytes a key; the revision records are shared); a physical compaction drops the records and
//! write requests of the revisions it removes; reading a snapshot back and replaying the log
//! after it (at a start, or when the leader sends one) drop their buffers. Without a trim the
//! member's RSS stays at its high-water mark: 107 MB above the live heap after a snapshot at
//! a million keys, 280 MB after compacting 500,000 overwrites of 1 KiB values, about 100 MB
//! after a restart at a million keys. Only glibc has `malloc_trim`; with any
//! other allocator this does nothing.

use std::sync::mpsc::{SyncSender, TrySendError};

use crate::server::error::{ServerError, io_error};

/// Trims asked for while one is pending merge into it.
const TRIM_REQUESTS_MAX: usize = 1;

/// A thread that trims the heap when asked, off the loop: a trim walks each malloc arena's
/// free lists under that arena's lock (1–25 ms here, from 100 MB to 2 GB of heap).
#[derive(Debug)]
pub(super) struct HeapTrimmer {
    requests: SyncSender<()>,
}

impl HeapTrimmer {
    pub(super) fn spawn() -> Result<Self, ServerError> {
        let (requests, inbox) = std::sync::mpsc::sync_channel::<()>(TRIM_REQUESTS_MAX);
        std::thread::Builder::new()
            .name("tally-trim".into())
            .spawn(move || {
                for () in inbox {
                    release_free_pages();
                }
            })
            .map_err(io_error("spawn heap trimmer"))?;
        Ok(HeapTrimmer { requests })
    }

    /// Asks for a trim soon; a request made while one is pending is the same trim.
    pub(super) fn request(&self) {
        match self.requests.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            // The thread is gone only if it panicked; the member runs on without trims.
            Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// Returns free heap pages to the OS, on the calling thread.
///
/// The workspace denies unsafe code; this one foreign call is allowed because no dependency
/// wraps it safely and nothing else returns the pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(super) fn release_free_pages() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> core::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and glibc allows it from any thread at any time;
    // its result (whether any memory was released) needs no action.
    let _released = unsafe { malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn release_free_pages() {}
