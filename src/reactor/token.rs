//! The token scheme: how an epoll event finds what it is for.
//!
//! | token                        | source                                   |
//! |------------------------------|------------------------------------------|
//! | 0                            | the handoff listener                     |
//! | 1                            | the signalfd                             |
//! | 2                            | the metrics listener                     |
//! | 3                            | the waker (resolver results, a reload's result) |
//! | 4                            | the pipe from an upgrade's new process   |
//! | 5 to 15                      | reserved for fixed sources               |
//! | generation << 37 \| slot << 5 \| 16 \| side | one fd of a slab connection       |
//!
//! The side takes the 3 bits below 16 (values 0 to 4 are used; bit 3 must be clear); the
//! fixed tokens are all below 16, so they never carry the connection bit.
//!
//! A slot's generation changes whenever the slot is freed, so an event for a connection that
//! is gone (or whose slot now holds another) is recognised and skipped.

use mio::Token;

pub const LISTENER: Token = Token(0);
pub const SIGNALS: Token = Token(1);
pub const METRICS_LISTENER: Token = Token(2);
/// The wake-up from helper threads: the resolver, a reload.
pub const WAKER: Token = Token(3);
/// The read end of the pipe an upgrade's new process says `READY=1` on.
pub const UPGRADE: Token = Token(4);
/// Set in every connection token and in no fixed one.
const CONNECTION_BIT: usize = 1 << 4;
const SLOT_SHIFT: u32 = 5;
const GENERATION_SHIFT: u32 = 37;
/// Generations wrap within the bits left above the slot.
pub const GENERATION_MASK: u32 = (1 << (usize::BITS - GENERATION_SHIFT)) - 1;

/// Which of a connection's sockets an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The Unix connection from Apache, while the handoff is received.
    Apache,
    /// The client's socket.
    Client,
    /// The connection to an upstream API.
    Upstream,
    /// A metrics scrape.
    Scrape,
    /// The stdout pipe of a program a local backend runs (the typing backend's `fortune`).
    Child,
}

impl Side {
    fn bits(self) -> usize {
        match self {
            Side::Apache => 0,
            Side::Client => 1,
            Side::Upstream => 2,
            Side::Scrape => 3,
            Side::Child => 4,
        }
    }

    fn from_bits(bits: usize) -> Option<Side> {
        match bits {
            0 => Some(Side::Apache),
            1 => Some(Side::Client),
            2 => Some(Side::Upstream),
            3 => Some(Side::Scrape),
            4 => Some(Side::Child),
            _ => None,
        }
    }
}

/// A slab slot together with the generation that was current when the key was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub slot: u32,
    pub generation: u32,
}

pub fn connection_token(key: Key, side: Side) -> Token {
    let generation = (key.generation & GENERATION_MASK) as usize;
    Token(
        (generation << GENERATION_SHIFT)
            | ((key.slot as usize) << SLOT_SHIFT)
            | CONNECTION_BIT
            | side.bits(),
    )
}

/// The connection and side a token names, or `None` for fixed or malformed tokens.
pub fn decode(token: Token) -> Option<(Key, Side)> {
    let raw = token.0;
    if raw & CONNECTION_BIT == 0 || raw & 0b1000 != 0 {
        return None;
    }
    let side = Side::from_bits(raw & 0b111)?;
    let slot = ((raw >> SLOT_SHIFT) & 0xffff_ffff) as u32;
    let generation = (raw >> GENERATION_SHIFT) as u32;
    Some((Key { slot, generation }, side))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for key in [
            Key {
                slot: 0,
                generation: 0,
            },
            Key {
                slot: 7,
                generation: 3,
            },
            Key {
                slot: u32::MAX,
                generation: GENERATION_MASK,
            },
        ] {
            for side in [
                Side::Apache,
                Side::Client,
                Side::Upstream,
                Side::Scrape,
                Side::Child,
            ] {
                assert_eq!(decode(connection_token(key, side)), Some((key, side)));
            }
        }
    }

    #[test]
    fn fixed_tokens_are_not_connections() {
        for token in [LISTENER, SIGNALS, METRICS_LISTENER, WAKER, Token(15)] {
            assert_eq!(decode(token), None);
        }
        // Side bits that name no side, and the bit above the sides.
        assert_eq!(decode(Token(CONNECTION_BIT | 0b101)), None);
        assert_eq!(decode(Token(CONNECTION_BIT | 0b111)), None);
        assert_eq!(decode(Token(CONNECTION_BIT | 0b1000)), None);
    }
}
