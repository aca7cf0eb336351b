//! Exact heap use: [`CountingAllocator`], a global allocator that counts the bytes in use and
//! their peak, and the functions that read those counts. Kept apart because it is the one
//! piece of the measurement a program installs itself, and the only `unsafe` one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Heap bytes currently allocated through [`CountingAllocator`].
static HEAP_IN_USE: AtomicUsize = AtomicUsize::new(0);
/// Highest value [`HEAP_IN_USE`] reached since the last [`reset_heap_peak`].
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that forwards to the system allocator and counts the bytes in use.
///
/// A program opts in with
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: apprentice::eval::efficiency::CountingAllocator =
///     apprentice::eval::efficiency::CountingAllocator;
/// ```
///
/// and [`measure`](super::measure) then reports exact peak heap use. What is counted: every byte requested
/// from the heap by any thread of the process (Rust allocations, hence every tensor of the
/// CPU backend), at its requested size. Not counted: stack, code, memory mapped directly from
/// the operating system, allocator bookkeeping, and GPU memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    fn grow(bytes: usize) {
        let now = HEAP_IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
    }

    fn shrink(bytes: usize) {
        HEAP_IN_USE.fetch_sub(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are atomics and never affect what is returned.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            Self::grow(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            Self::grow(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(pointer, layout) };
        Self::shrink(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        let new_pointer = unsafe { System.realloc(pointer, layout, new_size) };
        if !new_pointer.is_null() {
            if new_size >= layout.size() {
                Self::grow(new_size - layout.size());
            } else {
                Self::shrink(layout.size() - new_size);
            }
        }
        new_pointer
    }
}

/// True when this program's global allocator is [`CountingAllocator`].
pub fn heap_counter_installed() -> bool {
    // A live allocation must show in the count; without the allocator the count stays 0.
    // While the probe lives, a counting allocator's count includes it; any other allocator
    // leaves the count at 0, whatever other threads do meanwhile.
    let probe = black_box(vec![0u8; 4096]);
    let during = HEAP_IN_USE.load(Ordering::Relaxed);
    drop(probe);
    during >= 4096
}

/// Heap bytes in use now, as counted by [`CountingAllocator`] (0 when it is not installed).
pub fn heap_in_use() -> usize {
    HEAP_IN_USE.load(Ordering::Relaxed)
}

/// Starts a new peak: from now on [`heap_peak`] reports the highest use from this level on.
pub fn reset_heap_peak() {
    HEAP_PEAK.store(HEAP_IN_USE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The highest heap use since the last [`reset_heap_peak`].
pub fn heap_peak() -> usize {
    HEAP_PEAK.load(Ordering::Relaxed)
}
