// SPDX-License-Identifier: GPL-2.0

//! A high-resolution timer that fires in softirq context, embedded in a value that is built
//! in place (a `const` written into its allocation).
//!
//! The kernel crate's `HrTimer` needs pin-init and an owning pointer type; per-namespace state
//! built from a `const` has neither. This one is set up once its owner has its final address,
//! for an owner that it finds from the timer's address when it fires ([`TimerOwner`]). Its
//! times are `CLOCK_MONOTONIC` nanoseconds, the clock of [`crate::ffi::now_ns`].

use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, prelude::*, types::Opaque};

/// A value that holds a [`SoftTimer`] and is told when it fires; it cancels the timer
/// ([`SoftTimer::cancel`]) before it is freed.
pub(crate) trait TimerOwner: Sync {
    /// The byte offset of the timer within `Self` (`core::mem::offset_of!`).
    const TIMER_OFFSET: usize;
    /// Called in softirq context when the timer fires. To fire again, it re-arms the timer
    /// with [`SoftTimer::start_at`].
    fn fired(&self);
}

/// Called by the hrtimer core, in softirq context, when a timer set up for `T` fires.
///
/// # Safety
///
/// `timer` is the timer of a live `T`, at `T::TIMER_OFFSET` (see `SoftTimer::setup`).
unsafe extern "C" fn fired_trampoline<T: TimerOwner>(
    timer: *mut bindings::hrtimer,
) -> bindings::hrtimer_restart {
    // `raw` is the first field of a `repr(C)` `SoftTimer`, so the timer's address is the
    // `SoftTimer`'s.
    // SAFETY: By `setup`'s contract, stepping back `TIMER_OFFSET` bytes gives the `T` that
    // holds this timer, which cancels it (waiting for this callback) before it is freed.
    let owner = unsafe { &*timer.cast::<u8>().sub(T::TIMER_OFFSET).cast::<T>() };
    owner.fired();
    bindings::hrtimer_restart::HRTIMER_NORESTART
}

/// A soft hrtimer on `CLOCK_MONOTONIC` with absolute expiry times.
#[repr(C)]
pub(crate) struct SoftTimer {
    raw: Opaque<bindings::hrtimer>,
    /// Set by [`SoftTimer::setup`]; starting or cancelling before that does nothing.
    ready: AtomicBool,
}

// SAFETY: The kernel's hrtimer code serialises every operation on the timer itself.
unsafe impl Sync for SoftTimer {}
// SAFETY: As for `SoftirqLock`: used in place only, once set up (its owner never moves).
unsafe impl Send for SoftTimer {}

impl SoftTimer {
    /// A timer that is not set up.
    pub(crate) const fn new() -> Self {
        Self {
            raw: Opaque::uninit(),
            ready: AtomicBool::new(false),
        }
    }

    /// Sets the timer up to call `T::fired` on its owner when it fires.
    ///
    /// # Safety
    ///
    /// `self` is the field at `T::TIMER_OFFSET` of a `T` that never moves again. Called once
    /// per timer, before it can be started, while no other CPU can reach it. The owner cancels
    /// the timer ([`SoftTimer::cancel`]) before it is freed, and the module before its code
    /// is.
    pub(crate) unsafe fn setup<T: TimerOwner>(&self) {
        // SAFETY: `raw` is memory for a timer that no one uses yet (the caller's contract);
        // `hrtimer_setup` initialises it.
        unsafe {
            bindings::hrtimer_setup(
                self.raw.get(),
                Some(fired_trampoline::<T>),
                bindings::CLOCK_MONOTONIC as bindings::clockid_t,
                bindings::hrtimer_mode_HRTIMER_MODE_ABS_SOFT,
            )
        };
        self.ready.store(true, Ordering::Release);
    }

    /// (Re)arms the timer to fire at `at_ns`, or up to `slack_ns` later. Any context; from the
    /// timer's own callback too.
    pub(crate) fn start_at(&self, at_ns: u64, slack_ns: u64) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: Set up (`ready`); the hrtimer core serialises concurrent starts and
        // cancels of one timer.
        unsafe {
            bindings::hrtimer_start_range_ns(
                self.raw.get(),
                at_ns.min(i64::MAX as u64) as i64,
                slack_ns,
                bindings::hrtimer_mode_HRTIMER_MODE_ABS_SOFT,
            )
        };
    }

    /// Stops the timer and waits for a running callback to return; the callback may have
    /// re-armed it, which this undoes too. Process context.
    pub(crate) fn cancel(&self) {
        if !self.ready.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: Set up (`ready`); `hrtimer_cancel` may wait, which process context allows.
        unsafe { bindings::hrtimer_cancel(self.raw.get()) };
    }
}
