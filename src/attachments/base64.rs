//! Standard base64 (RFC 4648 §4, `A-Z a-z 0-9 + /`, padded with `=`): an encoder that works on
//! slices so a file can be encoded as it is read, and the check for inline images.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Bytes of base64 for `n` bytes of input: `4 × ⌈n/3⌉`.
pub fn encoded_len(n: u64) -> u64 {
    n.div_ceil(3).saturating_mul(4)
}

/// Encodes `input` into the start of `out`, padding the last group; returns the bytes written
/// (`encoded_len(input.len())`). `out` must have that much room. Encoding a long input in
/// slices gives the same bytes as encoding it whole when every slice but the last is a multiple
/// of 3 bytes long.
pub fn encode_into(input: &[u8], out: &mut [u8]) -> usize {
    let mut written = 0;
    let mut groups = input.chunks_exact(3);
    for group in &mut groups {
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        out[written..written + 4].copy_from_slice(&[
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            ALPHABET[(n >> 6) as usize & 63],
            ALPHABET[n as usize & 63],
        ]);
        written += 4;
    }
    match *groups.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out[written..written + 4].copy_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
            written += 4;
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out[written..written + 4].copy_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                b'=',
            ]);
            written += 4;
        }
        _ => {}
    }
    written
}

fn is_alphabet(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/'
}

/// The decoded length of `text` when it is standard, padded base64: only the alphabet, `=` only
/// as one or two final padding characters, a length that is a multiple of 4. `None` otherwise.
/// Such text is also safe to put inside a JSON string as it is.
pub fn decoded_len(text: &[u8]) -> Option<u64> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let padding = match text {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    let body = &text[..text.len() - padding];
    // "A===" and "===="-like tails: a group needs at least two real characters.
    if padding > 0 && body.len() % 4 < 2 {
        return None;
    }
    if !body.iter().all(|&b| is_alphabet(b)) {
        return None;
    }
    Some((text.len() / 4 * 3 - padding) as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A plain decoder for tests: compares what the encoder wrote with the original bytes.
    pub(crate) fn decode(text: &[u8]) -> Vec<u8> {
        let mut values = [0u32; 256];
        for (i, &a) in ALPHABET.iter().enumerate() {
            values[usize::from(a)] = i as u32;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for group in text.chunks(4) {
            let real = group.iter().take_while(|&&b| b != b'=').count();
            let n = group[..real].iter().enumerate().fold(0u32, |n, (i, &b)| {
                n | values[usize::from(b)] << (18 - 6 * i)
            });
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..real - 1]);
        }
        out
    }

    fn encode(input: &[u8]) -> String {
        let mut out = vec![0; encoded_len(input.len() as u64) as usize];
        let n = encode_into(input, &mut out);
        assert_eq!(n, out.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(input.as_bytes()), output);
            assert_eq!(decoded_len(output.as_bytes()), Some(input.len() as u64));
            assert_eq!(decode(output.as_bytes()), input.as_bytes());
        }
        assert_eq!(encode(b"\x89PNG"), "iVBORw==");
        assert_eq!(encode(b"%PDF-1.4"), "JVBERi0xLjQ=");
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn slices_of_whole_groups_encode_like_the_whole() {
        let input: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let whole = encode(&input);
        let mut pieces = String::new();
        for slice in input.chunks(33) {
            pieces.push_str(&encode(slice));
        }
        assert_eq!(pieces, whole);
        assert_eq!(decode(whole.as_bytes()), input);
    }

    #[test]
    fn only_standard_padded_text_is_accepted() {
        for good in [
            "", "QQ==", "QUI=", "QUJD", "/9j/", "R0lGODlh", "UklGRg==", "+/+/",
        ] {
            assert!(decoded_len(good.as_bytes()).is_some(), "{good}");
        }
        for bad in [
            "Q",
            "QQ",
            "QQ=",
            "QUJ",
            "Q===",
            "====",
            "QQ==QQ==",
            "QQ=A",
            "Q-_A",
            "QUJD\n",
            " QQ==",
            "QQ\"}",
            "AAAA\"}},{\"type\"",
            "QU\u{e9}=",
        ] {
            assert_eq!(decoded_len(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(decoded_len(b"QQ=="), Some(1));
        assert_eq!(decoded_len(b"QUI="), Some(2));
        assert_eq!(decoded_len(b"QUJDRA=="), Some(4));
    }

    #[test]
    fn encoded_length_is_four_per_started_group() {
        assert_eq!(encoded_len(0), 0);
        assert_eq!(encoded_len(1), 4);
        assert_eq!(encoded_len(3), 4);
        assert_eq!(encoded_len(4), 8);
        assert_eq!(encoded_len(20_971_520), 27_962_028);
        assert_eq!(encoded_len(u64::MAX), u64::MAX);
    }
}
