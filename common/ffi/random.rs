// SPDX-License-Identifier: GPL-2.0

//! The kernel's random numbers.

use kernel::bindings;

/// A random 32-bit number from the kernel's CRNG; callable in any context.
pub(crate) fn random_u32() -> u32 {
    // SAFETY: `get_random_u32` has no preconditions and may be called from any context.
    unsafe { bindings::get_random_u32() }
}
