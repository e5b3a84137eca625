#!/usr/bin/env bash
# Installs the pinned plotting stack (scripts/plot-requirements.txt) into a virtual
# environment outside the clone and prints its python's path. Idempotent: the environment is
# keyed by the requirements file, so a second run only prints the path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
requirements=$here/scripts/plot-requirements.txt
key=$(sha256sum "$requirements" | cut -c1-16)
venv=${MPUDP_CACHE:-/var/cache/mpudp}/plot-venv-$key
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
	rm -rf "$venv"
	mkdir -p "$(dirname "$venv")"
	echo "install-plot-deps: installing matplotlib into $venv" >&2
	python3 -m venv "$venv" >&2
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
	touch "$venv/.complete"
fi
echo "$venv/bin/python"
