"""Keep every model library off the network.

`enforce_offline()` is called by the CLI before any model library is imported, and again by each
model loader (cheap and idempotent), so library users get the same guarantee.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
}


def enforce_offline() -> None:
    """Tell hub-aware libraries (huggingface_hub, used by faster-whisper) never to reach a network."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


def looks_like_hub_id(spec: str) -> bool:
    """True for strings such as "Systran/faster-whisper-tiny" that a library would fetch from a hub."""
    if spec.startswith(("http://", "https://", "hf://")):
        return True
    if "/" in spec and not Path(spec).exists() and not spec.startswith((".", "/", "~")):
        return spec.count("/") == 1
    return False
