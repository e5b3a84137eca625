// SPDX-License-Identifier: GPL-2.0

//! An immutable value published under RCU: the datagram path reads the whole of one version,
//! never a mix of two, and a writer replaces it without waiting for readers.

use core::marker::PhantomData;

use kernel::sync::atomic::{Acquire, Relaxed, Release};
use kernel::{bindings, prelude::*, sync::atomic::Atomic, sync::rcu};

use super::ConfigGuard;

/// One published version; the head is what `kvfree_call_rcu` queues it by.
#[repr(C)]
struct Version<T> {
    value: T,
    head: bindings::kvfree_rcu_head,
}

/// A `T` that readers load whole (a copy: configurations are a few words), lock-free in any
/// context, and that writers replace under the configuration lock. Old versions are freed by
/// the kernel after a grace period (`kvfree_call_rcu`), so replacing never sleeps and leaves
/// no callback in module code.
pub(crate) struct RcuValue<T: Copy> {
    /// The current `Version<T>`, from `KBox::into_raw`; 0 before [`RcuValue::init`] and after
    /// [`RcuValue::release`].
    current: Atomic<usize>,
    _owns: PhantomData<T>,
}

// SAFETY: Readers only get copies of `T`; versions are created and freed by writers that the
// configuration lock serialises, and `T: Send` lets a version be freed on any CPU.
unsafe impl<T: Copy + Send> Sync for RcuValue<T> {}
// SAFETY: As above.
unsafe impl<T: Copy + Send> Send for RcuValue<T> {}

impl<T: Copy> RcuValue<T> {
    /// Nothing published yet: [`RcuValue::load`] returns `None`.
    pub(crate) const fn new() -> Self {
        Self {
            current: Atomic::new(0),
            _owns: PhantomData,
        }
    }

    /// Publishes the first version. Process context; before anyone else can reach the value.
    pub(crate) fn init(&self, value: T) -> Result {
        let version = Self::allocate(value)?;
        self.current.store(version as usize, Release);
        Ok(())
    }

    /// The current version, copied; `None` before [`RcuValue::init`]. Any context.
    pub(crate) fn load(&self) -> Option<T> {
        let _rcu = rcu::read_lock();
        let version = self.current.load(Acquire) as *const Version<T>;
        // SAFETY: A non-zero pointer is a version published with Release after it was
        // written; it is freed only a grace period after it was replaced, and the RCU read
        // lock is held across the copy.
        unsafe { version.as_ref() }.map(|v| v.value)
    }

    /// Publishes `change` applied to a copy of the current version; the old version is freed
    /// after a grace period. Process context (it allocates: `ENOMEM` keeps the old version);
    /// the lock's guard serialises writers, so no update is lost.
    pub(crate) fn update(&self, _config: &ConfigGuard, change: impl FnOnce(&mut T)) -> Result {
        let old = self.current.load(Relaxed) as *mut Version<T>;
        // SAFETY: Writers hold the configuration lock, so `old` is not freed under this one.
        let mut value = unsafe { old.as_ref() }.ok_or(ENODEV)?.value;
        change(&mut value);
        let version = Self::allocate(value)?;
        self.current.store(version as usize, Release);
        // SAFETY: `old` came from `KBox::into_raw` (kmalloc memory, which kvfree frees) and is
        // no longer reachable for new readers; the kernel frees it once the readers that
        // may still hold it have left their RCU read-side sections. `head` lies within it.
        unsafe {
            bindings::kvfree_call_rcu(core::ptr::addr_of_mut!((*old).head), old.cast::<c_void>())
        };
        Ok(())
    }

    /// Frees the current version at once.
    ///
    /// # Safety
    ///
    /// No reader or writer can reach this value any more, and readers that could before
    /// have left their RCU read-side sections (a grace period has passed).
    pub(crate) unsafe fn release(&self) {
        let version = self.current.xchg(0, Relaxed) as *mut Version<T>;
        if !version.is_null() {
            // SAFETY: From `KBox::into_raw` in `allocate`; unreachable (the caller's contract).
            drop(unsafe { KBox::from_raw(version) });
        }
    }

    fn allocate(value: T) -> Result<*mut Version<T>> {
        let version = KBox::new(
            Version {
                value,
                // Zeroed: its fields depend on the kernel's configuration, and the kernel
                // fills them in when it queues the version.
                head: bindings::kvfree_rcu_head::default(),
            },
            GFP_KERNEL,
        )?;
        Ok(KBox::into_raw(version))
    }
}
