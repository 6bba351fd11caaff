//! How long the typing backend pauses after each character (SPEC §4.2): a little longer where
//! a person typing would.

use std::time::Duration;

pub fn pause_after(character: char) -> Duration {
    let millis = match character {
        '\n' => 100,
        '.' | '!' | '?' => 150,
        ',' | ':' => 80,
        ' ' => 30,
        _ => 25,
    };
    Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_by_character() {
        for (character, millis) in [
            ('\n', 100),
            ('.', 150),
            ('!', 150),
            ('?', 150),
            (',', 80),
            (':', 80),
            (' ', 30),
            ('a', 25),
            (';', 25),
            ('\t', 25),
            ('é', 25),
        ] {
            assert_eq!(
                pause_after(character),
                Duration::from_millis(millis),
                "{character:?}"
            );
        }
    }
}
