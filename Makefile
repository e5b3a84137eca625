# SPDX-License-Identifier: GPL-2.0
# MPUDP: build the patched test kernel (cached outside the clone), the two Rust modules, and
# run the demo and the selftests in a virtme-ng VM.
#
#   make             install tools if missing, build or reuse the kernel, build the modules
#   make check       ... then host unit tests, static checks, and the selftests in the VM
#   make run         ... then the quick benchmark grid: goodput through OpenVPN over UDP, TCP,
#                    MPTCP and MPUDP on two emulated paths, as a table (about 11 minutes)
#   make install     the modules (/lib/modules/<release>/updates) and mpudp-paths
#                    ($(PREFIX)/sbin, default /usr/local); DESTDIR= stages it elsewhere
#   make check-debug the selftests on a debug kernel (KASAN, lockdep, PROVE_RCU, kmemleak,
#                    UBSAN, atomic-sleep checks); any report fails the run
#   make bench GRID=symmetric [RUNS=n]  a benchmark grid in the VM (scripts/bench-guest.sh
#                    lists them; GRID=overhead is the hook's cost): CSV, Markdown table and
#                    plots in .build/bench/
#   make plots       the paper-style figures from the CSVs in BENCH_DIR (default benchmarks/,
#                    the published results), with the pinned matplotlib
#   make CLIPPY=1    build the modules with clippy as the compiler
#   make lint        rustfmt, checkpatch --strict, shellcheck
#   KDIR=/path make  build against an existing patched, built kernel tree instead

SHELL := /bin/bash
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib
RUSTC ?= /usr/bin/rustc
BINDGEN ?= $(HOME)/.cargo/bin/bindgen
# The rustup proxies in ~/.cargo/bin shadow Debian's matching clippy.
CLIPPY_DRIVER ?= /usr/bin/clippy-driver
RUSTFMT ?= $(HOME)/.cargo/bin/rustfmt
KBUILD_ARGS = LLVM=-19 RUSTC=$(RUSTC) BINDGEN=$(BINDGEN) CLIPPY_DRIVER=$(CLIPPY_DRIVER) \
	$(if $(CLIPPY),CLIPPY=1) KRUSTFLAGS=-Dwarnings
RUST_SOURCES = mpudp_send.rs mpudp_recv.rs $(wildcard common/*.rs common/ffi/*.rs) selftests/unit.rs
SHELL_SOURCES = $(wildcard scripts/*.sh selftests/*.sh) scripts/mpudp-paths .ci/run
STAMP = .build

.PHONY: all deps kernel modules install unit lint check check-debug run bench plots clean

all: modules

deps:
	@scripts/install-deps.sh

# The kernel tree's path is kept in $(STAMP)/kdir for the other targets.
kernel: deps
	@mkdir -p $(STAMP)
	@if [ -n "$(KDIR)" ]; then echo "$(KDIR)" >$(STAMP)/kdir; \
	else scripts/build-kernel.sh >$(STAMP)/kdir; fi

modules: kernel
	$(MAKE) -C "$$(cat $(STAMP)/kdir)" M=$(CURDIR) $(KBUILD_ARGS) modules
	@modinfo -F description mpudp_send.ko mpudp_recv.ko

# Installs the modules where modprobe finds them (kbuild's modules_install:
# $(DESTDIR)/lib/modules/<release>/updates, then depmod) and the path table, mpudp-paths, in
# $(DESTDIR)$(PREFIX)/sbin. Build against the kernel that will run them: KDIR=/path make install.
PREFIX ?= /usr/local
install: modules
	$(MAKE) -C "$$(cat $(STAMP)/kdir)" M=$(CURDIR) $(KBUILD_ARGS) INSTALL_MOD_PATH=$(DESTDIR) \
		modules_install
	install -D -m 0755 scripts/mpudp-paths $(DESTDIR)$(PREFIX)/sbin/mpudp-paths

unit: deps
	@mkdir -p $(STAMP)
	$(RUSTC) --edition 2021 --test selftests/unit.rs -o $(STAMP)/unit
	$(STAMP)/unit

lint: kernel
	$(RUSTFMT) --check --config-path "$$(cat $(STAMP)/kdir)/.rustfmt.toml" $(RUST_SOURCES)
	# checkpatch needs to run inside the kernel tree it checks against.
	cd "$$(cat $(STAMP)/kdir)" && perl scripts/checkpatch.pl --strict --quiet $(CURDIR)/udp-hook.patch
	shellcheck -x $(SHELL_SOURCES)

# The staged install checks that `make install` puts both modules and a working mpudp-paths
# (it runs, and without sysfs files says why) where they belong.
INSTALL_CHECK = $(CURDIR)/$(STAMP)/install-check
check: unit lint
	$(MAKE) modules CLIPPY=1
	rm -rf $(INSTALL_CHECK)
	$(MAKE) install CLIPPY=1 DESTDIR=$(INSTALL_CHECK) >$(STAMP)/install-check.log 2>&1 || \
		{ cat $(STAMP)/install-check.log; false; }
	test "$$(find $(INSTALL_CHECK)/lib/modules -name 'mpudp_*.ko' | wc -l)" = 2
	! $(INSTALL_CHECK)$(PREFIX)/sbin/mpudp-paths /nonexistent >/dev/null 2>&1
	$(INSTALL_CHECK)$(PREFIX)/sbin/mpudp-paths /nonexistent 2>&1 | grep -q 'is mpudp_send loaded'
	scripts/run-selftests.sh "$$(cat $(STAMP)/kdir)"

# The debug variant has its own cached kernel and builds a copy of the module sources in
# $(STAMP)/debug/src (kbuild refuses an output directory while the checkout holds the test
# build's objects).
DEBUG_SRC = $(STAMP)/debug/src
# The debug kernel runs about ten times slower under TCG: fewer fuzz writes and load/unload
# cycles keep the whole suite within an hour (override on the command line); receivers
# wait longer for the first datagram, srtt may be off by 20 % (KASAN adds about 3 ms) and is
# measured on 80 and 240 ms paths (the VM's own RTT varies by 6-14 ms there), and
# held datagrams wait 3 s instead of 1.5 s (sending them and reading the count takes longer),
# and a closing peer may take 1.5 s instead of 0.5 to read plain (one read takes 0.8 s).
# RATE_BOUNDS=0: the debug kernel forwards less than the emulated paths carry (about 2.5
# Mbit/s a path against netem's 10), so the capacity the `rate` tests read is the VM's: they
# run, their delivery checks hold, and their share, capacity, stall and delay bounds SKIP.
# no5lvl: with QEMU TCG's 5-level paging, KASAN reports a wild access in the boot CPU's
# first timer interrupt (before any module loads), which switches lockdep off for the whole
# run. kasan_multi_shot: report every KASAN finding, not only the first.
DEBUG_FUZZ_WRITES ?= 2000
DEBUG_STRESS_CYCLES ?= 40
check-debug: deps
	@mkdir -p $(DEBUG_SRC)/common
	scripts/build-kernel.sh debug >$(STAMP)/kdir-debug
	cp Kbuild mpudp_send.rs mpudp_recv.rs $(DEBUG_SRC)/
	cp -r common/. $(DEBUG_SRC)/common/
	$(MAKE) -C "$$(cat $(STAMP)/kdir-debug)" M=$(CURDIR)/$(DEBUG_SRC) $(KBUILD_ARGS) modules
	MPUDP_KO_DIR=$(CURDIR)/$(DEBUG_SRC) VM_MEMORY=4G VM_TIMEOUT=5400 \
		VM_APPEND="no5lvl kasan_multi_shot" \
		FUZZ_WRITES=$(DEBUG_FUZZ_WRITES) STRESS_CYCLES=$(DEBUG_STRESS_CYCLES) \
		RECV_TIMEOUT=30 SRTT_TOLERANCE_PCT=20 SRTT_DELAYS_MS='40 120' HELD_DELAY_MS=3000 \
		CLOSING_MAX_MS=1500 RATE_BOUNDS=0 \
		scripts/run-selftests.sh "$$(cat $(STAMP)/kdir-debug)"

run: modules
	scripts/run-bench.sh "$$(cat $(STAMP)/kdir)" quick

GRID ?= quick
bench: modules
	scripts/run-bench.sh "$$(cat $(STAMP)/kdir)" $(GRID) $(RUNS)
	$(MAKE) plots BENCH_DIR=$(STAMP)/bench

BENCH_DIR ?= benchmarks
plots:
	python=$$(scripts/install-plot-deps.sh) && "$$python" scripts/bench-plot.py $(BENCH_DIR) $(BENCH_DIR)

clean:
	-[ -f $(STAMP)/kdir ] && $(MAKE) -C "$$(cat $(STAMP)/kdir)" M=$(CURDIR) clean
	rm -rf $(STAMP)
