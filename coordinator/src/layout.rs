//! Where each object byte lives: stripes, pieces and shard offsets.
//!
//! An object of `size` bytes is cut into stripes of `stripe_size = k * piece` bytes; the last
//! stripe may be shorter. Stripe `s` contributes one piece to every shard, at shard offset
//! `s * piece`; the last stripe's pieces are `ceil(rest / k)` bytes (zero-padded data).

use serde::{Deserialize, Serialize};

/// Stripe geometry of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Object length in bytes.
    pub size: u64,
    /// Data shards per stripe.
    pub k: u64,
    /// Bytes of each shard per full stripe.
    pub piece: u64,
}

impl Layout {
    /// Object bytes per full stripe.
    pub fn stripe_size(&self) -> u64 {
        self.k * self.piece
    }
    /// Number of stripes (0 for an empty object).
    pub fn stripes(&self) -> u64 {
        self.size.div_ceil(self.stripe_size())
    }
    /// Object bytes held by stripe `s`.
    pub fn stripe_len(&self, s: u64) -> u64 {
        (self.size - s * self.stripe_size()).min(self.stripe_size())
    }
    /// Bytes of each shard belonging to stripe `s`.
    pub fn piece_len(&self, s: u64) -> u64 {
        self.stripe_len(s).div_ceil(self.k)
    }
    /// Offset of stripe `s`'s piece within each shard.
    pub fn shard_offset(&self, s: u64) -> u64 {
        s * self.piece
    }
    /// Length of every shard of the object.
    pub fn shard_len(&self) -> u64 {
        match self.stripes() {
            0 => 0,
            n => (n - 1) * self.piece + self.piece_len(n - 1),
        }
    }
    /// Stripe holding object byte `offset`.
    pub fn stripe_of(&self, offset: u64) -> u64 {
        offset / self.stripe_size()
    }
}

#[cfg(test)]
mod tests {
    use super::Layout;

    #[test]
    fn geometry() {
        let l = Layout {
            size: 10,
            k: 4,
            piece: 2,
        };
        assert_eq!(l.stripes(), 2);
        assert_eq!(l.stripe_len(1), 2);
        assert_eq!(l.piece_len(1), 1);
        assert_eq!(l.shard_len(), 3);
        let empty = Layout {
            size: 0,
            k: 4,
            piece: 2,
        };
        assert_eq!((empty.stripes(), empty.shard_len()), (0, 0));
        let exact = Layout {
            size: 16,
            k: 4,
            piece: 2,
        };
        assert_eq!(
            (exact.stripes(), exact.shard_len(), exact.stripe_of(15)),
            (2, 4, 1)
        );
    }
}
