//! The C allocator's one setting we change (glibc only; musl's allocator has no such knob).

/// Fixes glibc's mmap threshold at its initial 128 KiB, unless the operator set
/// `MALLOC_MMAP_THRESHOLD_`. By default glibc raises the threshold to the size of each large
/// block freed (up to 32 MiB); large buffers allocated after that (the log queue's batches in a
/// burst, a relay's long line) come from the heap, where what is freed among long-lived blocks is
/// not given back. A daemon that had relayed half a million streams with faults sat 8-12% above
/// its resting RSS that way, 4% with the threshold fixed: large blocks keep mappings of their
/// own, returned whole when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_blocks_mapped() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, so no allocation races it. A refusal (0) leaves glibc's default, which works.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_blocks_mapped() {}
