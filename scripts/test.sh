#!/usr/bin/env bash
# Run the test suite (sets voiceos up first when needed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/voiceos ] || [ ! -f .venv/.voiceos-installed ] || \
   [ "$(cat .venv/.voiceos-installed)" != "$(sha256sum pyproject.toml | cut -d' ' -f1)" ]; then
  ./scripts/setup.sh
else
  .venv/bin/voiceos models install >/dev/null
fi
.venv/bin/ruff check voiceos tests scripts
.venv/bin/mypy voiceos
exec .venv/bin/python -m pytest "$@"
