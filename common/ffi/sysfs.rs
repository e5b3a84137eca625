// SPDX-License-Identifier: GPL-2.0

//! The files under `/sys/kernel/mpudp`: static attribute groups and subdirectories.

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use kernel::{bindings, error::to_result, prelude::*};

/// Writes `show` output into the page sysfs hands out, refusing to overflow it.
pub(crate) struct PageWriter<'a> {
    page: &'a mut [u8],
    len: usize,
}

impl fmt::Write for PageWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.page
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What a module's sysfs files do; runs in process context and may sleep.
pub(crate) trait SysfsFiles {
    /// Prints file `name`'s value, ending in a newline.
    fn show(name: &CStr, out: &mut PageWriter<'_>) -> Result;
    /// Parses and applies a write to file `name`; on error the old value stays.
    fn store(name: &CStr, input: &[u8]) -> Result;
}

/// Most files a group can hold.
const MAX_FILES: usize = 48;

/// A file's name and whether root may write it (mode 0644) or only read it (0444).
pub(crate) struct File {
    pub(crate) name: &'static CStr,
    pub(crate) writable: bool,
}

/// A static group of files in `/sys/kernel/mpudp` (or a named subdirectory of it).
pub(crate) struct SysfsGroup {
    name: Option<&'static CStr>,
    files: &'static [File],
    attrs: UnsafeCell<[bindings::kobj_attribute; MAX_FILES]>,
    attr_ptrs: UnsafeCell<[*mut bindings::attribute; MAX_FILES + 1]>,
    group: UnsafeCell<bindings::attribute_group>,
    /// Set by the first registration; a second one (which would rewrite attributes sysfs
    /// reads) fails with `EBUSY`. Statics are fresh at every module load.
    claimed: AtomicBool,
}

// SAFETY: The cells are written only by the one `register` that claims the group, before
// sysfs can see them, and only read afterwards (by sysfs).
unsafe impl Sync for SysfsGroup {}

impl SysfsGroup {
    /// A group of `files` (at most [`MAX_FILES`]), in subdirectory `name` or directly in the
    /// directory.
    pub(crate) const fn new(name: Option<&'static CStr>, files: &'static [File]) -> Self {
        assert!(files.len() <= MAX_FILES);
        Self {
            name,
            files,
            // SAFETY: All-zero is a valid value for these C structs (NULL pointers, no callbacks).
            attrs: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            attr_ptrs: UnsafeCell::new([core::ptr::null_mut(); MAX_FILES + 1]),
            // SAFETY: As above.
            group: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            claimed: AtomicBool::new(false),
        }
    }

    /// Creates the files; they disappear when the returned registration is dropped.
    pub(crate) fn register<F: SysfsFiles>(&'static self) -> Result<SysfsRegistration> {
        // SAFETY: `udp_mpath_kobj` is set once at boot by the patch (late initcall) and never
        // changed.
        let dir = unsafe { bindings::udp_mpath_kobj };
        if dir.is_null() {
            pr_err!("/sys/kernel/mpudp is missing: is the kernel built with udp-hook.patch?\n");
            return Err(ENODEV);
        }
        self.register_on::<F>(dir)
    }

    /// Creates the files in `parent` (a directory made by [`SysfsDir::create`]), which must
    /// outlive the returned registration.
    pub(crate) fn register_in<F: SysfsFiles>(
        &'static self,
        parent: &SysfsDir,
    ) -> Result<SysfsRegistration> {
        self.register_on::<F>(parent.0)
    }

    fn register_on<F: SysfsFiles>(
        &'static self,
        dir: *mut bindings::kobject,
    ) -> Result<SysfsRegistration> {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        // SAFETY: Only the one call that claimed the group gets here, and nothing else touches
        // the cells until `sysfs_create_group` publishes them.
        let (attrs, ptrs, group) = unsafe {
            (
                &mut *self.attrs.get(),
                &mut *self.attr_ptrs.get(),
                &mut *self.group.get(),
            )
        };
        for (i, file) in self.files.iter().enumerate() {
            attrs[i].attr.name = file.name.as_char_ptr();
            attrs[i].attr.mode = if file.writable { 0o644 } else { 0o444 };
            attrs[i].__bindgen_anon_1.show = Some(show_trampoline::<F>);
            if file.writable {
                attrs[i].__bindgen_anon_2.store = Some(store_trampoline::<F>);
            }
            ptrs[i] = &raw mut attrs[i].attr;
        }
        group.name = self
            .name
            .map_or(core::ptr::null(), |name| name.as_char_ptr());
        group.__bindgen_anon_2.attrs = ptrs.as_mut_ptr();
        // SAFETY: `dir` is a live kobject and the group is 'static and fully initialised.
        to_result(unsafe { bindings::sysfs_create_group(dir, self.group.get()) })?;
        Ok(SysfsRegistration {
            dir,
            group: self.group.get(),
        })
    }
}

/// Created sysfs files; dropping removes them and waits for running callbacks.
pub(crate) struct SysfsRegistration {
    dir: *mut bindings::kobject,
    group: *const bindings::attribute_group,
}

// SAFETY: The pointers refer to a boot-time kobject and a 'static group.
unsafe impl Send for SysfsRegistration {}
// SAFETY: As above; the type has no methods that use them except `drop`.
unsafe impl Sync for SysfsRegistration {}

impl Drop for SysfsRegistration {
    fn drop(&mut self) {
        // SAFETY: The group was created on `dir` by `register`.
        unsafe { bindings::sysfs_remove_group(self.dir, self.group) };
    }
}

/// The `show` callback of every MPUDP sysfs file.
///
/// # Safety
///
/// `attr` is one of the attributes registered by [`SysfsGroup::register`] and `buf` is the
/// page sysfs provides for `show`.
unsafe extern "C" fn show_trampoline<F: SysfsFiles>(
    _kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: sysfs passes one of our attributes, whose name is a 'static C string.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs hands `show` a zeroed, exclusive buffer of one page.
    let page =
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) };
    let mut out = PageWriter { page, len: 0 };
    match F::show(name, &mut out) {
        Ok(()) => out.len as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// The `store` callback of every writable MPUDP sysfs file.
///
/// # Safety
///
/// `attr` is one of the attributes registered by [`SysfsGroup::register`] and `buf` holds
/// `count` readable bytes.
unsafe extern "C" fn store_trampoline<F: SysfsFiles>(
    _kobj: *mut bindings::kobject,
    attr: *mut bindings::kobj_attribute,
    buf: *const c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs passes one of our attributes, whose name is a 'static C string.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name) };
    // SAFETY: sysfs passes `count` readable bytes that stay valid for the call.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    match F::store(name, input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// A directory under `/sys/kernel/mpudp`; removed when dropped (after its groups).
pub(crate) struct SysfsDir(*mut bindings::kobject);

// SAFETY: A kobject pointer, used only to add and remove groups and to drop it.
unsafe impl Send for SysfsDir {}
// SAFETY: As above.
unsafe impl Sync for SysfsDir {}

impl SysfsDir {
    /// Creates `/sys/kernel/mpudp/NAME`.
    pub(crate) fn create(name: &'static CStr) -> Result<Self> {
        // SAFETY: Set once at boot by the patch and never changed.
        let parent = unsafe { bindings::udp_mpath_kobj };
        if parent.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: `name` is a 'static C string and `parent` a live kobject.
        let dir = unsafe { bindings::kobject_create_and_add(name.as_char_ptr(), parent) };
        if dir.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self(dir))
    }
}

impl Drop for SysfsDir {
    fn drop(&mut self) {
        // SAFETY: Created by `kobject_create_and_add`; this drops its only reference.
        unsafe { bindings::kobject_put(self.0) };
    }
}
