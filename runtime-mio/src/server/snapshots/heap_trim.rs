//! Gives the heap's free pages back to the OS once a snapshot's copy of the store is dropped.
//!
//! A snapshot copies the store's key index (about 80 bytes a key; the revision records are
//! shared) and drops the copy once the file is written. glibc's malloc keeps freed memory
//! that is not at the top of its heap: without a trim, every snapshot left the member's RSS
//! higher by about the index's size (107 MB at a million keys) until the pages were reused.
//! Only glibc has `malloc_trim`; with any other allocator this does nothing.

/// Returns free heap pages to the OS; the snapshot worker calls it after each job, off the
/// loop (the trim holds one malloc arena's lock at a time while it walks its free lists).
///
/// The workspace denies unsafe code; this one foreign call is allowed because no dependency
/// wraps it safely and nothing else returns the pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(in crate::server) fn release_free_pages() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> core::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and glibc allows it from any thread at any time;
    // its result (whether any memory was released) needs no action.
    let _released = unsafe { malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(in crate::server) fn release_free_pages() {}
