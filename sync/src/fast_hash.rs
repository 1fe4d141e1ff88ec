//! A small, fast, non-cryptographic hasher (the Fx hash used by rustc) for the
//! planner's indexes.
//!
//! The indexes hold only keys from the database and the settings (ids, folded
//! names, mapping keys); claim values are only looked up, never inserted, so
//! an identity provider cannot flood a table with colliding keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Fx hash: rotate, xor, multiply, eight bytes at a time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_with_borrowed_keys() {
        let mut m: FastMap<String, u32> = FastMap::default();
        m.insert("backend".into(), 1);
        m.insert("backend-1".into(), 2);
        m.insert("a-much-longer-group-name-than-eight".into(), 3);
        assert_eq!(m.get("backend"), Some(&1));
        assert_eq!(m.get("backend-1"), Some(&2));
        assert_eq!(m.get("a-much-longer-group-name-than-eight"), Some(&3));
        assert_eq!(m.get("backend-2"), None);
    }
}
