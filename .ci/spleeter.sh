#!/usr/bin/env bash
# Prepare the separate Spleeter environment xaffect's `spleeter` backend runs in
# (Spleeter pins numpy<2, tensorflow 2.12 and Python<3.12, so it cannot share
# xaffect's environment). Idempotent: a second run only checks.
#
#   .ci/spleeter.sh            # env at ${XAFFECT_SPLEETER_ENV:-~/.cache/xaffect/spleeter-env}
#   pytest -m spleeter         # then run the Spleeter tests
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-$here/.venv/bin/python}"
if ! command -v ffmpeg >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "spleeter.sh: Spleeter needs the ffmpeg binary; install it" >&2; exit 1
    fi
fi
"$py" -m xaffect.cli setup spleeter
