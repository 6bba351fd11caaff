//! Random bytes from the kernel's CSPRNG (`getrandom(2)`), for ids a client must not guess: the
//! SSE stream ids of resumable streams (SPEC §2.1).

use std::io;

/// Fills `buf` from the kernel's CSPRNG. Blocks only until the pool is initialised at boot
/// (never, on a running system); interrupted and short reads are retried.
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe `rest`, a live, writable slice; getrandom
        // writes at most `rest.len()` bytes into it and keeps no reference.
        let got = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match super::check_size(got) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_byte_and_differs_each_time() {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        // 2^-128 odds of a false failure.
        assert_ne!(a, b);
        let mut empty = [0u8; 0];
        fill(&mut empty).unwrap();
    }
}
