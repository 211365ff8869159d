#!/usr/bin/env bash
# Creates or reuses the project's virtual environment (idempotent): `bash scripts/setup_env.sh [VENV]`.
# Called by `make setup` (and so by `make demo` / `make test`); safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.installed"
want=$(cat requirements.txt scripts/setup_env.sh | sha1sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
pip install -r requirements.txt
# Pinned to old torch/numpy/Pillow and torchvision: installed without dependencies, weights only.
pip install --no-deps facenet-pytorch==2.6.0
# spb-cli pins typing-extensions<4 (torch needs >=4.10): its CLI runs with current versions of these.
pip install --no-deps spb-cli==0.19.4
pip install click rich requests boto3 natsort semver pprintpp six
# ByteTrack (face tracks): its opencv-python requirement would shadow opencv-python-headless, so its other
# requirements are installed by hand (supervision and scipy are in requirements.txt; rich, requests above).
pip install --no-deps trackers==2.6.1
pip install "pyDeprecate>=0.8"
# Speech for the voice alert (pyttsx3 drives espeak-ng and plays through aplay). Best effort: without
# them the job warns once and goes on.
if ! { command -v espeak-ng && command -v aplay; } >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng alsa-utils >/dev/null) \
    || echo "setup: espeak-ng could not be installed; voice alerts will be skipped" >&2
fi
echo "$want" > "$STAMP"
echo "setup: environment ready in $VENV"
