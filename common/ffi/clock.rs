// SPDX-License-Identifier: GPL-2.0

//! The clock MPUDP measures time with.

use kernel::bindings;

/// Monotonic time in nanoseconds, safe in any context.
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `ktime_get_mono_fast_ns` has no preconditions and is NMI-safe.
    unsafe { bindings::ktime_get_mono_fast_ns() }
}
