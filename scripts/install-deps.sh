#!/usr/bin/env bash
# Installs every host tool MPUDP needs to build the kernel, the modules and run the VM tests.
#
# Idempotent: each step checks before it acts, so a second run is quick and changes nothing.
# Versions are pinned: a kernel source or toolchain that moves silently would not take the patch.
set -euo pipefail

die() { printf 'install-deps: %s\n' "$*" >&2; exit 1; }
say() { printf 'install-deps: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"

# Pinned versions; see ../shared/notes/platform.md for why each one.
LINUX_SOURCE_VERSION=7.3.4-1~bpo13+1
RUST_WEB_VERSION=1.96.0+dfsg1-1~deb12u2
LLVM_VERSION=1:19.1.7-3~deb12u1
QEMU_SYSTEM_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1
IPROUTE2_VERSION=6.15.0-1~bpo12+1
BINDGEN_VERSION=0.73.2
VIRTME_NG_VERSION=1.42

SOURCES=/etc/apt/sources.list.d/debian.sources
APT_UPDATED=0

apt_update_once() {
	if [ "$APT_UPDATED" = 0 ]; then
		apt-get update -qq || die "apt-get update failed"
		APT_UPDATED=1
	fi
}

# Adds a Debian suite by copying the machine's main archive entry (the first stanza of its
# sources file) and changing only the Suites line, so no registry host is named here.
add_suite() {
	local suite=$1 file=/etc/apt/sources.list.d/mpudp-$1.sources
	[ -f "$file" ] && return 0
	[ -f "$SOURCES" ] || die "no $SOURCES to derive the $suite entry from"
	awk 'BEGIN { RS = ""; ORS = "\n" } NR == 1' "$SOURCES" |
		sed -E "s/^Suites:.*/Suites: $suite/" >"$file"
	grep -q "^Suites: $suite\$" "$file" || die "could not derive an apt entry for $suite"
	say "added apt suite $suite"
	APT_UPDATED=0
}

# installed_version PKG: prints the installed version, or nothing.
installed_version() {
	dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$1 == "installed" { print $2 }'
}

# apt_pin [-t SUITE] PKG=VERSION...: installs exactly these versions unless already installed;
# -t lets dependencies come from a low-priority backports suite too.
apt_pin() {
	local want=() spec pkg ver target=()
	if [ "$1" = -t ]; then target=(-t "$2"); shift 2; fi
	for spec in "$@"; do
		pkg=${spec%%=*} ver=${spec#*=}
		[ "$(installed_version "$pkg")" = "$ver" ] || want+=("$spec")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	apt_update_once
	say "installing ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		--allow-downgrades "${target[@]}" "${want[@]}" >/dev/null ||
		die "apt-get install ${want[*]} failed (is the pinned version still served?)"
}

# apt_any PKG...: installs whatever the default suites carry (tools whose version does not
# change results).
apt_any() {
	local want=() pkg
	for pkg in "$@"; do
		[ -n "$(installed_version "$pkg")" ] || want+=("$pkg")
	done
	[ ${#want[@]} -eq 0 ] && return 0
	apt_update_once
	say "installing ${want[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${want[@]}" >/dev/null || die "apt-get install ${want[*]} failed"
}

add_suite bookworm-backports
add_suite trixie-backports

apt_any bc bison flex libelf-dev libssl-dev cpio kmod rsync dwarves xz-utils make gcc \
	python3-pip openvpn iperf3 mptcpize wget iputils-ping socat busybox-static \
	netcat-openbsd procps shellcheck
apt_pin -t trixie-backports "linux-source-7.3=$LINUX_SOURCE_VERSION"
apt_pin "rustc-web=$RUST_WEB_VERSION" "rust-web-src=$RUST_WEB_VERSION" \
	"rust-web-clippy=$RUST_WEB_VERSION"
# The kernel is built with LLVM (see build-kernel.sh).
apt_pin "libclang-19-dev=$LLVM_VERSION" "clang-19=$LLVM_VERSION" "lld-19=$LLVM_VERSION" \
	"llvm-19=$LLVM_VERSION"
# qemu-system-x86 must match the machine's qemu-utils (bookworm's 7.2 conflicts with it).
apt_pin -t bookworm-backports "qemu-system-x86=$QEMU_SYSTEM_VERSION" "qemu-system-common=$QEMU_SYSTEM_VERSION" \
	"qemu-system-data=$QEMU_SYSTEM_VERSION"
apt_pin -t bookworm-backports "iproute2=$IPROUTE2_VERSION"

CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
bindgen_info=$("$CARGO_BIN/bindgen" --version 2>/dev/null || true)
if ! grep -q "bindgen $BINDGEN_VERSION\$" <<<"$bindgen_info"; then
	command -v cargo >/dev/null || [ -x "$CARGO_BIN/cargo" ] || die "cargo not found"
	say "installing bindgen-cli $BINDGEN_VERSION"
	PATH=$CARGO_BIN:$PATH cargo install --quiet --locked "bindgen-cli@$BINDGEN_VERSION" ||
		die "cargo install bindgen-cli@$BINDGEN_VERSION failed"
fi

# Captured first: grep -q would close the pipe early and pipefail would call that a failure.
virtme_info=$(python3 -m pip show virtme-ng 2>/dev/null || true)
if ! grep -q "^Version: $VIRTME_NG_VERSION\$" <<<"$virtme_info"; then
	say "installing virtme-ng $VIRTME_NG_VERSION"
	python3 -m pip install --quiet --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION" ||
		die "pip install virtme-ng==$VIRTME_NG_VERSION failed"
fi

say "all tools present"
