#!/usr/bin/env bash
# Builds (or reuses) the patched, Rust-enabled test kernel and prints its tree's path.
#
# The tree lives outside the clone, in $MPUDP_CACHE (default /var/cache/mpudp), under a key
# made of everything the build depends on: kernel source package, udp-hook.patch, the config
# fragment(s), the make command line and the toolchain versions. A second run with the same inputs
# prints the cached tree at once.
#
# Usage: build-kernel.sh [VARIANT]    VARIANT is "test" (default); fragments are
#        kernel/mpudp.config plus kernel/VARIANT.config when that file exists.
# Progress goes to stderr; stdout is only the tree path.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-test}
cache=${MPUDP_CACHE:-/var/cache/mpudp}
tarball=/usr/src/linux-source-7.3.tar.xz
jobs=${JOBS:-$(($(nproc) + 1))}

export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
RUSTC=${RUSTC:-/usr/bin/rustc}
BINDGEN=${BINDGEN:-${CARGO_HOME:-$HOME/.cargo}/bin/bindgen}
# LLVM, not gcc: Rust-for-Linux's primary toolchain, and the only one with which Rust and
# KASAN can be enabled together (the debug variant).
kflags=(LLVM=-19 RUSTC="$RUSTC" BINDGEN="$BINDGEN")
kmake=(make -s -j"$jobs" "${kflags[@]}")

# Nothing from a calling make (CLIPPY=1, KDIR, -j) may leak into the kernel build.
unset MAKEFLAGS MFLAGS MAKELEVEL

say() { printf 'build-kernel: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ -f "$tarball" ] || die "$tarball missing: run scripts/install-deps.sh"
fragments=("$here/kernel/mpudp.config")
[ -f "$here/kernel/$variant.config" ] && fragments+=("$here/kernel/$variant.config")

key=$(
	{
		dpkg-query -W -f='${Version}\n' linux-source-7.3
		cat "$here/udp-hook.patch" "${fragments[@]}"
		echo "${kflags[*]}"
		"$RUSTC" --version
		"$BINDGEN" --version
		clang-19 --version | head -n 1
	} | sha256sum | cut -c1-16
)
dir=$cache/kernel-$variant-$key
tree=$dir/linux-source-7.3

if [ -f "$dir/.built" ]; then
	say "reusing $tree"
	echo "$tree"
	exit 0
fi

mkdir -p "$dir"
if [ ! -f "$dir/.patched" ]; then
	say "unpacking kernel source into $dir"
	rm -rf "$tree"
	tar -xf "$tarball" -C "$dir"
	say "applying udp-hook.patch"
	patch -d "$tree" -p1 --quiet --forward <"$here/udp-hook.patch" ||
		die "udp-hook.patch does not apply to $(dpkg-query -W -f='${Version}' linux-source-7.3)"
	touch "$dir/.patched"
fi

if [ ! -f "$dir/.configured" ]; then
	say "configuring ($variant): allnoconfig + ${fragments[*]##*/}"
	"${kmake[@]}" -C "$tree" rustavailable >/dev/null ||
		die "the Rust toolchain is not usable: run scripts/install-deps.sh"
	cat "${fragments[@]}" >"$dir/fragment.config"
	"${kmake[@]}" -C "$tree" allnoconfig KCONFIG_ALLCONFIG="$dir/fragment.config" >/dev/null
	missing=0
	while IFS= read -r line; do
		case "$line" in '' | '#'*) continue ;; esac
		if ! grep -qxF "$line" "$tree/.config"; then
			say "config option not taken: $line"
			missing=1
		fi
	done <"$dir/fragment.config"
	[ "$missing" = 0 ] || die "Kconfig dropped options above (unmet dependencies?)"
	touch "$dir/.configured"
fi

say "building bzImage and modules with $jobs jobs (about 10 minutes on 2 cores)"
start=$(date +%s)
"${kmake[@]}" -C "$tree" >"$dir/build.log" 2>&1 || {
	tail -n 40 "$dir/build.log" >&2
	die "kernel build failed; full log in $dir/build.log"
}
touch "$dir/.built"
say "built in $(($(date +%s) - start)) s"

# Keep the cache bounded: drop trees of this variant built from other inputs.
for old in "$cache"/kernel-"$variant"-*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$tree"
