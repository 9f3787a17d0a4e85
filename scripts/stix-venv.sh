#!/usr/bin/env bash
# Creates, once, a Python virtual environment with the real STIX/TAXII clients the view/taxii
# interoperability test runs (taxii2-client, stix2, stix2-validator) and prints its python's path:
#
#   export THREATPIPE_TEST_STIX_PYTHON="$(scripts/stix-venv.sh)"
#
# The versions are pinned and the venv lives under ~/.cache/threatpipe/stix-venv-<hash of the
# pins and the python version>, so a changed pin builds a new one and an unchanged one is reused.
# stix2-validator must be 3.3.2 or later: 3.3.1's wheel ships without its JSON schemas.
# Only the python path goes to stdout; progress goes to stderr.
set -euo pipefail
LOG_NAME=stix-venv
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PINS=(
  "taxii2-client==2.3.0"
  "stix2==3.0.2"
  "stix2-validator==3.3.2"
)

apt_install() {
  local sudo_cmd=()
  [[ "$(id -u)" -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! command -v python3 >/dev/null; then
  log "python3 missing: installing it and python3-venv from Debian"
  apt_install python3 python3-venv
fi
pyver="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
hash="$(printf '%s\n' "$pyver" "${PINS[@]}" | sha256sum | cut -c1-12)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/threatpipe"
venv="$cache/stix-venv-$hash"

# A venv is only used once its .complete marker exists: an interrupted install is rebuilt.
if [[ -x "$venv/bin/python" && -f "$venv/.complete" ]]; then
  printf '%s\n' "$venv/bin/python"
  exit 0
fi

# Debian's python3 lacks ensurepip (and so venv) without python3-venv.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  log "python3-venv missing: installing it from Debian"
  apt_install python3-venv
fi

mkdir -p "$cache"
rm -rf "$venv"
log "creating $venv (${PINS[*]})"
python3 -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2
# Fail here, not in the test, when a wheel is broken (3.3.1's missing schemas).
"$venv/bin/python" - >&2 <<'PY'
import stix2, stix2validator, taxii2client
r = stix2validator.validate_instance({"type": "identity", "spec_version": "2.1",
    "id": "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff", "created": "2024-01-01T00:00:00.000Z",
    "modified": "2024-01-01T00:00:00.000Z", "name": "x"}, stix2validator.ValidationOptions(strict=True))
assert r.is_valid, r.as_dict()
PY
touch "$venv/.complete"
log "ready in $(elapsed "$START_NS")s"
printf '%s\n' "$venv/bin/python"
