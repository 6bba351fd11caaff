//! Test support: the ways a byte stream can arrive. A sans-I/O parser must give the same result
//! whether its input comes whole, one byte at a time, or cut anywhere, because the socket decides
//! where reads end, not the protocol.

/// Calls `run` with `input` cut every way the tests use: whole, one byte per piece, and in two at
/// every point. An empty input is tried once, as one empty piece.
pub fn for_each_split(input: &[u8], mut run: impl FnMut(&[&[u8]])) {
    run(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    run(&bytes);
    for at in 1..input.len() {
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
    }
}
