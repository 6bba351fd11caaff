//! The file-mode creation mask, changed only for the span of one call.
//!
//! The umask is process-wide: while it is changed, a file created by any thread gets it. The
//! daemon changes it only before it starts any thread (to bind its socket); the lock keeps two
//! changes in one process (tests bind from several threads) from restoring each other's.

use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // Poisoned only if `f` panicked, and the guard below restored the mask then.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Restores the previous mask when dropped, even if the call in between panics.
struct Restore(libc::mode_t);

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: umask(2) cannot fail and only swaps an integer.
        unsafe { libc::umask(self.0) };
    }
}

/// Runs `f` with the umask set to `mask` (the low 9 bits), then restores it.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    let _lock = lock();
    // SAFETY: umask(2) cannot fail and only swaps an integer.
    let _restore = Restore(unsafe { libc::umask((mask & 0o777) as libc::mode_t) });
    f()
}

/// The current umask.
pub fn current() -> u32 {
    let _lock = lock();
    // SAFETY: umask(2) cannot fail; it can only be read by setting it, so set it back at once
    // (the lock makes the round trip invisible to `with_umask`).
    let mask = unsafe { libc::umask(0o022) };
    // SAFETY: as above.
    unsafe { libc::umask(mask) };
    mask as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_is_set_for_the_call_and_restored_after_it_even_on_panic() {
        let before = current();
        let inside = with_umask(0o117, || {
            // SAFETY: (test) read and put back, under the lock `with_umask` holds.
            let mask = unsafe { libc::umask(0o117) };
            mask as u32
        });
        assert_eq!(inside, 0o117);
        assert_eq!(current(), before);

        let result = std::panic::catch_unwind(|| with_umask(0o077, || panic!("inside")));
        assert!(result.is_err());
        assert_eq!(current(), before);
    }
}
