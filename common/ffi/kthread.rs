// SPDX-License-Identifier: GPL-2.0

//! Worker kernel threads, at most one per namespace, and what they may call.

use core::cell::UnsafeCell;
use core::marker::PhantomData;

use kernel::{bindings, prelude::*};

use super::{ConfigGuard, NetId};

/// Proof that the code holding it runs in a worker thread started by [`Worker::start`]: only
/// `worker_main` makes one (the field is private), and it cannot leave that thread (neither
/// `Send` nor `Sync`).
pub(crate) struct WorkerThread(PhantomData<*mut ()>);

impl WorkerThread {
    /// Whether this worker thread has been told to stop.
    pub(crate) fn should_stop(&self) -> bool {
        // SAFETY: `self` proves that this runs in a kernel thread made by `Worker::start`,
        // as `kthread_should_stop` requires.
        unsafe { bindings::kthread_should_stop() }
    }

    /// Sleeps for about `ms` milliseconds, at least one tick (`kthread_stop` does not cut it
    /// short).
    fn sleep_ms(&self, ms: u32) {
        // SAFETY: `self` proves that this runs in a kernel thread, which may sleep.
        unsafe { bindings::msleep_interruptible(ms) };
    }
}

/// What a worker thread does.
pub(crate) trait WorkerBody: Send + Sync + 'static {
    /// Runs in a kernel thread (process context, may sleep) and returns once
    /// [`WorkerThread::should_stop`] is true.
    fn run(&self, thread: &WorkerThread);
}

/// A running kernel thread and the data it works on; dropping stops the thread and waits for
/// it, then drops the data.
pub(crate) struct Worker<T: WorkerBody> {
    task: *mut bindings::task_struct,
    body: KBox<T>,
}

// SAFETY: The task pointer is only used to stop the thread; `T` is `Send + Sync`.
unsafe impl<T: WorkerBody> Send for Worker<T> {}

impl<T: WorkerBody> Worker<T> {
    /// Starts a thread named `name` running `body.run()`.
    pub(crate) fn start(name: &'static CStr, body: KBox<T>) -> Result<Self> {
        let data: *const T = &*body;
        // SAFETY: `worker_main::<T>` matches the thread function type; `data` stays valid until
        // the thread has exited (`drop` stops it before `body` is freed); the name format is a
        // literal "%s" with one C string argument.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(worker_main::<T>),
                data.cast_mut().cast(),
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        };
        let task = kernel::error::from_err_ptr(task)?;
        // SAFETY: `task` is a newly created, not yet started kernel thread.
        unsafe { bindings::wake_up_process(task) };
        Ok(Self { task, body })
    }
}

impl<T: WorkerBody> Drop for Worker<T> {
    fn drop(&mut self) {
        // SAFETY: The thread was created by `start` and cannot have exited on its own:
        // `worker_main` returns only after `kthread_should_stop()`. This waits for its exit.
        unsafe { bindings::kthread_stop(self.task) };
    }
}

/// The function every worker thread runs.
///
/// # Safety
///
/// `data` is the `T` given to [`Worker::start`], valid until the thread exits.
unsafe extern "C" fn worker_main<T: WorkerBody>(data: *mut c_void) -> c_int {
    // SAFETY: See the function's contract.
    let body = unsafe { &*data.cast_const().cast::<T>() };
    // This is the thread `Worker::start` made, as `WorkerThread` promises.
    let thread = WorkerThread(PhantomData);
    body.run(&thread);
    // `kthread_stop` needs the thread to still exist when it is called.
    while !thread.should_stop() {
        thread.sleep_ms(10);
    }
    0
}

/// A namespace's worker, in a [`Workers`] table.
type WorkerSlot<T> = Option<(NetId, Worker<T>)>;

/// One module's worker threads, at most one per namespace; changed only under the
/// configuration lock.
pub(crate) struct Workers<T: WorkerBody>(UnsafeCell<[WorkerSlot<T>; crate::netns::MAX_NAMESPACES]>);

// SAFETY: The cell is only accessed by methods that require the configuration lock's guard.
unsafe impl<T: WorkerBody> Sync for Workers<T> {}

impl<T: WorkerBody> Workers<T> {
    /// No workers.
    pub(crate) const fn new() -> Self {
        Self(UnsafeCell::new(
            [const { None }; crate::netns::MAX_NAMESPACES],
        ))
    }

    /// The table, exclusively.
    ///
    /// # Safety
    ///
    /// No other reference returned by `table` is alive while the result is. Holding the
    /// configuration lock (`_config`) keeps other threads out; within one thread, the caller
    /// must not call it again while it uses the result.
    #[allow(clippy::mut_from_ref, reason = "exclusive by the configuration lock")]
    unsafe fn table(&self, _config: &ConfigGuard) -> &mut [WorkerSlot<T>] {
        // SAFETY: Other threads are kept out by the configuration lock, and this thread
        // holds no other reference (the function's contract).
        unsafe { &mut *self.0.get() }
    }

    /// Whether `net` has a worker.
    pub(crate) fn running(&self, config: &ConfigGuard, net: NetId) -> bool {
        // SAFETY: The only reference from `table`, dropped before this returns.
        unsafe { self.table(config) }
            .iter()
            .flatten()
            .any(|(owner, _)| *owner == net)
    }

    /// Starts `body` as `net`'s worker, after stopping the one it had.
    pub(crate) fn start(
        &self,
        config: &ConfigGuard,
        net: NetId,
        name: &'static CStr,
        body: KBox<T>,
    ) -> Result {
        self.stop(config, net);
        // SAFETY: The only reference from `table` (`stop` has returned), dropped before this
        // returns.
        let slot = unsafe { self.table(config) }
            .iter_mut()
            .find(|slot| slot.is_none())
            .ok_or(ENOSPC)?;
        *slot = Some((net, Worker::start(name, body)?));
        Ok(())
    }

    /// Stops `net`'s worker, if it has one, and waits for it.
    pub(crate) fn stop(&self, config: &ConfigGuard, net: NetId) {
        // SAFETY: The only reference from `table`, dropped before this returns.
        for slot in unsafe { self.table(config) }.iter_mut() {
            if slot.as_ref().is_some_and(|(owner, _)| *owner == net) {
                *slot = None;
            }
        }
    }

    /// Stops every worker.
    pub(crate) fn stop_all(&self, config: &ConfigGuard) {
        // SAFETY: The only reference from `table`, dropped before this returns.
        for slot in unsafe { self.table(config) }.iter_mut() {
            *slot = None;
        }
    }
}
