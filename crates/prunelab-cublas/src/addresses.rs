//! Where the batched products' address lists live, and when one can be read again instead of
//! written.
//!
//! `cublasGemmBatchedEx` reads the address of every matrix of its three operands from a list in
//! device memory, which a kernel (`gemm_pointers`) writes before each product: a launch per
//! product, 36 of a MiniLM training step's and 12 of an inference batch's. The list is a function
//! of the operands' device addresses and the batch's layout alone ([`ListKey`]), and a step
//! repeats the last one's allocations, so most products find a list already written for them.
//!
//! [`AddressLists`] hands out places for lists in one arena of device memory and remembers which
//! key each holds. A place is rewritten only after the arena filled up and started over; every
//! product and every list's kernel is queued on one CUDA stream (CubeCL's), so a rewrite runs
//! after every product that read the place before. Arenas that grow are kept, never freed: work
//! queued earlier may still read them (at most twice the largest arena in all).

use std::collections::HashMap;

/// The first arena's bytes: room for about 180 lists of MiniLM's 384 matrices.
pub const FIRST_ARENA: usize = 4 << 20;

/// Everything a batched product's address list is computed from: its operands' device addresses
/// (a, b, the output) and the kernel's arguments (matrices, the length of the last batch axis,
/// the outer and inner batch strides of a, b and the output, in elements). Equal keys mean equal
/// lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListKey {
    /// The device addresses of a, b and the output.
    pub operands: [u64; 3],
    /// Matrices in the batch.
    pub count: usize,
    /// The length of the last batch axis.
    pub inner: usize,
    /// The outer and inner batch strides of a, b and the output (`layout::Batch`).
    pub strides: [usize; 6],
}

impl ListKey {
    /// The list's bytes: three device addresses a matrix, rounded up to 256.
    pub fn bytes(&self) -> usize {
        (24 * self.count).next_multiple_of(256)
    }
}

/// Where a product's list lies, and whether it must be written there first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A list for an equal key lies here, written by work queued earlier.
    Written(u64),
    /// Write the list here before the product reads it.
    Empty(u64),
}

/// The arena of address lists and the key each place holds (see the module's docs).
#[derive(Debug, Default)]
pub struct AddressLists {
    /// The arena's device address and bytes.
    arena: Option<(u64, usize)>,
    /// Bytes handed out since the arena (re)started.
    used: usize,
    /// Where each key's list lies.
    lists: HashMap<ListKey, u64>,
    /// Arenas outgrown, kept allocated (see the module's docs).
    retired: Vec<u64>,
    /// Lists read again since the start.
    pub reused: u64,
    /// Lists written since the start.
    pub written: u64,
}

impl AddressLists {
    /// The place of `key`'s list: where it lies already when `reuse` and an equal key's list was
    /// written there since the arena last started over; else a free place in the arena, which
    /// `allocate` (bytes → device address) grows when the list does not fit an empty one.
    pub fn place(
        &mut self,
        key: ListKey,
        reuse: bool,
        allocate: impl FnOnce(usize) -> Result<u64, String>,
    ) -> Result<Place, String> {
        if let Some(&at) = self.lists.get(&key).filter(|_| reuse) {
            self.reused += 1;
            return Ok(Place::Written(at));
        }
        let bytes = key.bytes();
        let capacity = self.arena.map_or(0, |(_, capacity)| capacity);
        if self.used + bytes > capacity {
            self.lists.clear();
            self.used = 0;
            if bytes > capacity {
                let grown = bytes.max(2 * capacity).max(FIRST_ARENA);
                let base = allocate(grown)?;
                if let Some((old, _)) = self.arena.replace((base, grown)) {
                    self.retired.push(old);
                }
            }
        }
        let (base, _) = self.arena.expect("an arena was allocated above");
        let at = base + self.used as u64;
        self.used += bytes;
        self.lists.insert(key, at);
        self.written += 1;
        Ok(Place::Empty(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: u64, count: usize) -> ListKey {
        ListKey { operands: [a, 2, 3], count, inner: count, strides: [0, 4, 0, 4, 0, 4] }
    }

    /// An allocator that hands out 1 GiB-spaced addresses and counts its calls.
    fn arenas(calls: &mut Vec<usize>) -> impl FnOnce(usize) -> Result<u64, String> + '_ {
        move |bytes| {
            calls.push(bytes);
            Ok(calls.len() as u64 * (1 << 30))
        }
    }

    #[test]
    fn an_equal_key_reads_its_list_again_and_another_gets_a_place_of_its_own() {
        let (mut lists, mut calls) = (AddressLists::default(), Vec::new());
        let first = lists.place(key(1, 384), true, arenas(&mut calls)).unwrap();
        assert_eq!(first, Place::Empty(1 << 30));
        assert_eq!(lists.place(key(1, 384), true, arenas(&mut calls)).unwrap(), Place::Written(1 << 30));
        // 384 matrices: 9,216 bytes, already a multiple of 256.
        assert_eq!(lists.place(key(5, 384), true, arenas(&mut calls)).unwrap(), Place::Empty((1 << 30) + 9216));
        assert_eq!(calls, [FIRST_ARENA]);
        assert_eq!((lists.reused, lists.written), (1, 2));
    }

    #[test]
    fn without_reuse_every_list_is_written_at_a_new_place() {
        let (mut lists, mut calls) = (AddressLists::default(), Vec::new());
        let places: Vec<Place> = (0..3).map(|_| lists.place(key(1, 10), false, arenas(&mut calls)).unwrap()).collect();
        let base = 1u64 << 30;
        assert_eq!(places, [Place::Empty(base), Place::Empty(base + 256), Place::Empty(base + 512)]);
        assert_eq!((lists.reused, lists.written), (0, 3));
    }

    #[test]
    fn a_full_arena_starts_over_and_forgets_its_lists() {
        let (mut lists, mut calls) = (AddressLists::default(), Vec::new());
        // Each list of 43,690 matrices takes FIRST_ARENA / 4 bytes (rounded): four fill it.
        let count = FIRST_ARENA / 4 / 24;
        let places: Vec<Place> =
            (0..5).map(|a| lists.place(key(a, count), true, arenas(&mut calls)).unwrap()).collect();
        assert_eq!(key(0, count).bytes(), FIRST_ARENA / 4);
        assert_eq!(places[4], Place::Empty(1 << 30), "the fifth starts the arena over");
        // The first key's place was given to the fifth: its list is written again.
        assert_eq!(
            lists.place(key(0, count), true, arenas(&mut calls)).unwrap(),
            Place::Empty((1 << 30) + (FIRST_ARENA as u64 / 4))
        );
        assert_eq!(calls, [FIRST_ARENA], "no arena allocated beyond the first");
    }

    #[test]
    fn a_list_larger_than_the_arena_grows_it_and_keeps_the_old_one() {
        let (mut lists, mut calls) = (AddressLists::default(), Vec::new());
        lists.place(key(1, 10), true, arenas(&mut calls)).unwrap();
        let big = key(2, FIRST_ARENA / 24 + 1);
        assert_eq!(lists.place(big, true, arenas(&mut calls)).unwrap(), Place::Empty(2 << 30));
        assert_eq!(calls, [FIRST_ARENA, 2 * FIRST_ARENA]);
        assert_eq!(lists.retired, [1 << 30]);
        // The small key's list lay in the old arena: written anew in the new one.
        assert_eq!(
            lists.place(key(1, 10), true, arenas(&mut calls)).unwrap(),
            Place::Empty((2 << 30) + big.bytes() as u64)
        );
    }

    #[test]
    fn a_failed_allocation_is_an_error_and_changes_nothing() {
        let mut lists = AddressLists::default();
        let error = lists.place(key(1, 10), true, |_| Err("out of memory".to_string())).unwrap_err();
        assert_eq!(error, "out of memory");
        assert_eq!((lists.arena, lists.written), (None, 0));
    }
}
