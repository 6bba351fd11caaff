//! Test support: the ways a byte stream can arrive. A sans-I/O parser must give the same result
//! whether its input comes whole, one byte at a time, or cut anywhere, because the socket decides
//! where reads end, not the protocol.

/// Calls `run` with `input` cut every way the tests use: whole, one byte per piece, and in two at
/// every point. An empty input is tried once, as one empty piece.
pub fn for_each_split(input: &[u8], run: impl FnMut(&[&[u8]])) {
    for_each_split_every(input, 1, run);
}

/// Like [`for_each_split`], but cut in two only every `step` bytes: for end-to-end inputs of
/// many kilobytes, where every cut would make a test slow and add nothing, because the parsers
/// underneath are cut at every point in their own tests.
pub fn for_each_split_every(input: &[u8], step: usize, mut run: impl FnMut(&[&[u8]])) {
    run(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    run(&bytes);
    for at in (1..input.len()).step_by(step.max(1)) {
        let (head, tail) = input.split_at(at);
        run(&[head, tail]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_rebuilds_the_input() {
        let mut calls = 0;
        for_each_split(b"abcd", |pieces| {
            calls += 1;
            assert_eq!(pieces.concat(), b"abcd");
        });
        // whole, byte by byte, and three two-way cuts
        assert_eq!(calls, 5);
        calls = 0;
        for_each_split_every(b"abcdefg", 3, |pieces| {
            calls += 1;
            assert_eq!(pieces.concat(), b"abcdefg");
        });
        // whole, byte by byte, and cuts at 1 and 4
        assert_eq!(calls, 4);
    }
}
