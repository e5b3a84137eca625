// SPDX-License-Identifier: GPL-2.0

//! A spinlock for state that the datagram path (softirq) and process context share, embedded
//! in a value built in place (a `const` written into its allocation).
//!
//! The kernel crate's locks need pin-init, which state built from a `const` cannot give; this
//! one is initialised once its owner has its final address, before anything can take it. In softirq
//! context it is taken plainly; in process context with interrupts (and so softirqs) off on
//! this CPU, so that a softirq can never spin on it under its holder.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, prelude::*, sync::LockClassKey, types::Opaque};

/// A spinlock protecting a `T`.
pub(crate) struct SoftirqLock<T> {
    raw: Opaque<bindings::spinlock_t>,
    /// Set by [`SoftirqLock::init`]; taking the lock before that is a bug, refused at runtime
    /// (the lock is then not taken and the caller gets `None`).
    ready: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached through a guard, which exists only while the lock is held.
unsafe impl<T: Send> Sync for SoftirqLock<T> {}
// SAFETY: Moving the lock moves the data; a `SoftirqLock` is only ever used in place once
// initialised (its owner never moves again), and an uninitialised one holds no kernel state.
unsafe impl<T: Send> Send for SoftirqLock<T> {}

impl<T> SoftirqLock<T> {
    /// An unusable lock around `data`; [`SoftirqLock::init`] makes it usable.
    pub(crate) const fn new(data: T) -> Self {
        Self {
            raw: Opaque::uninit(),
            ready: AtomicBool::new(false),
            data: UnsafeCell::new(data),
        }
    }

    /// Makes the lock usable.
    ///
    /// # Safety
    ///
    /// Called once per lock, before any other method, while no other CPU can reach it (before
    /// its owner is published to the hooks, timers and files that take it); the lock never
    /// moves afterwards.
    pub(crate) unsafe fn init(&self, name: &'static CStr, key: Pin<&'static LockClassKey>) {
        // SAFETY: `raw` is valid memory for a spinlock that no one uses yet (the caller's
        // contract), and `name` and `key` are static, as lockdep requires.
        unsafe { bindings::__spin_lock_init(self.raw.get(), name.as_char_ptr(), key.as_ptr()) };
        self.ready.store(true, Ordering::Release);
    }

    /// Takes the lock on a CPU where softirqs cannot run (softirq context, or a hook).
    ///
    /// # Safety
    ///
    /// Bottom halves are disabled on this CPU for the guard's whole life (the caller runs in
    /// softirq context, or in a UDP hook, which runs with them disabled).
    pub(crate) unsafe fn lock_in_softirq(&self) -> Option<SoftirqGuard<'_, T>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Initialised (`ready`); released by the guard's drop.
        unsafe { bindings::spin_lock(self.raw.get()) };
        Some(SoftirqGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }

    /// Takes the lock in process context, with interrupts off on this CPU while it is held.
    pub(crate) fn lock_irq(&self) -> Option<IrqGuard<'_, T>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Initialised (`ready`); released by the guard's drop.
        unsafe { bindings::spin_lock_irq_disable(self.raw.get()) };
        Some(IrqGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

impl<T> SoftirqLock<T> {
    /// Takes the lock with bottom halves off on this CPU while it is held: in process
    /// context, or in softirq context, for state that a softirq also takes and whose holder
    /// may send (sending with interrupts off is not allowed; with softirqs off it is).
    pub(crate) fn lock_bh(&self) -> Option<BhGuard<'_, T>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: Initialised (`ready`); released by the guard's drop. Without PREEMPT_RT
        // (refused at build time below) a `spinlock_t` is a union whose one member is its
        // `raw_spinlock_t`, at offset 0: the C inline `spin_lock_bh` takes that same one.
        unsafe { bindings::_raw_spin_lock_bh(self.raw.get().cast()) };
        Some(BhGuard {
            lock: self,
            _not_send: PhantomData,
        })
    }
}

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!("SoftirqLock::lock_bh assumes that spinlock_t is a raw spinlock");

/// The lock held with bottom halves off; derefs to the data.
pub(crate) struct BhGuard<'a, T> {
    lock: &'a SoftirqLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Drop for BhGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken with `_raw_spin_lock_bh` by `lock_bh`, on this CPU.
        unsafe { bindings::_raw_spin_unlock_bh(self.lock.raw.get().cast()) };
    }
}

/// The lock held in softirq context; derefs to the data.
pub(crate) struct SoftirqGuard<'a, T> {
    lock: &'a SoftirqLock<T>,
    _not_send: PhantomData<*mut ()>,
}

/// The lock held in process context with interrupts off; derefs to the data.
pub(crate) struct IrqGuard<'a, T> {
    lock: &'a SoftirqLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Drop for SoftirqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken with `spin_lock` by `lock_in_softirq`, on this CPU.
        unsafe { bindings::spin_unlock(self.lock.raw.get()) };
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken with `spin_lock_irq_disable` by `lock_irq`, on this CPU.
        unsafe { bindings::spin_unlock_irq_enable(self.lock.raw.get()) };
    }
}

macro_rules! guard_deref {
    ($guard:ident) => {
        impl<T> core::ops::Deref for $guard<'_, T> {
            type Target = T;
            fn deref(&self) -> &T {
                // SAFETY: The guard exists only while the lock is held, so no one else
                // reaches the data.
                unsafe { &*self.lock.data.get() }
            }
        }

        impl<T> core::ops::DerefMut for $guard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                // SAFETY: As above, and `&mut self` makes this the only reference.
                unsafe { &mut *self.lock.data.get() }
            }
        }
    };
}
guard_deref!(SoftirqGuard);
guard_deref!(IrqGuard);
guard_deref!(BhGuard);
