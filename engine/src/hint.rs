//! A hint to the processor's cache, for callers that know which memory
//! they will read a little later (the sequencer looks a few commands
//! ahead in its batch). The engine crate's one `unsafe` lives here.

/// Starts loading the cache line holding `value`, without waiting for it:
/// a lookup a few commands later then finds it in the cache instead of
/// stalling on memory.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub fn prefetch<T>(value: &T) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is only a hint: it reads nothing into the program,
    // cannot fault, and `value` is a valid reference anyway. SSE, which the
    // intrinsic needs, is part of every x86_64 target.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast()) }
}

/// Without a prefetch instruction, nothing: lookups are just slower.
#[cfg(not(target_arch = "x86_64"))]
pub fn prefetch<T>(_value: &T) {}
