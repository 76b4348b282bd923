"""The model registry as a user meets it: `voiceos models list|verify|install`, bad --llm/--stt, doctor, devices.

Every command runs as a real subprocess. Corruption is made in a private models folder
(VOICEOS_MODELS_DIR) holding a copy of the registry, so the project's models are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT, SPEECH, run_voiceos

from voiceos.registry import load_registry

MODELS = ROOT / "models"
REGISTRY = load_registry(MODELS / "registry.toml")
SMALL = next(e for e in REGISTRY if e.name == "silero-vad-v6")  # 1.2 MB: quick to copy, flip and re-assemble


def assert_clean_failure(proc, *, lines: int | None = 1) -> str:  # type: ignore[no-untyped-def]
    """A non-zero exit with a message for the user and no Python traceback."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert err, "no message on stderr"
    if lines is not None:
        assert len(err) == lines, proc.stderr
    return proc.stderr


def table_rows(text: str) -> dict[str, list[str]]:
    """Rows of a rich table printed by `models list`: first line of each row, keyed by the name cell."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) >= 4 and cells[1]:
            rows[cells[1]] = cells
    return rows


@pytest.fixture
def private_models(tmp_path: Path) -> Path:
    """A models folder with a copy of the registry, links to the big installed models, and a real copy
    of the small one (which a test may corrupt without harming the project)."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(MODELS / "registry.toml", folder / "registry.toml")
    for entry in REGISTRY:
        source = MODELS / entry.target
        if entry is SMALL:
            shutil.copy(source.resolve(), folder / entry.target)
        else:
            (folder / entry.target).symlink_to(source.resolve(), target_is_directory=source.is_dir())
    return folder


# --- list / verify on the installed models --------------------------------------------------------------


@pytest.mark.models
def test_models_list_shows_every_registry_model_as_installed() -> None:
    proc = run_voiceos("models", "list")
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    for entry in REGISTRY:
        assert entry.name in rows, f"{entry.name} missing from `models list`:\n{proc.stdout}"
        role, _name, _default, installed = rows[entry.name][:4]
        assert role == entry.role
        assert installed == "yes", rows[entry.name]


def test_bare_models_command_lists_too() -> None:
    proc = run_voiceos("models")
    assert proc.returncode == 0, proc.stderr
    assert {e.name for e in REGISTRY} <= set(table_rows(proc.stdout))


def test_models_list_says_not_installed_in_an_empty_models_folder(tmp_path: Path) -> None:
    shutil.copy(MODELS / "registry.toml", tmp_path / "registry.toml")
    proc = run_voiceos("models", "list", env={"VOICEOS_MODELS_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    rows = table_rows(proc.stdout)
    assert {e.name for e in REGISTRY} <= set(rows), proc.stdout
    assert all(rows[e.name][3] == "no" for e in REGISTRY), proc.stdout


@pytest.mark.models
def test_models_verify_passes_on_the_installed_models() -> None:
    proc = run_voiceos("models", "verify")
    assert proc.returncode == 0, proc.stderr
    for entry in REGISTRY:
        assert f"ok   {entry.name}" in proc.stdout, proc.stdout
    assert "FAIL" not in proc.stdout + proc.stderr


# --- corruption and repair ---------------------------------------------------------------------------------


@pytest.mark.models
def test_corrupt_model_fails_verify_and_install_force_repairs_it(private_models: Path) -> None:
    env = {"VOICEOS_MODELS_DIR": str(private_models)}
    assert run_voiceos("models", "verify", env=env).returncode == 0  # the private copy starts out sound

    victim = private_models / SMALL.target
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped: same size, different SHA-256
    victim.write_bytes(bytes(data))

    proc = run_voiceos("models", "verify", env=env)
    err = assert_clean_failure(proc, lines=None)
    fails = [line for line in err.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1, err  # only the corrupted model is reported
    assert SMALL.name in fails[0] and str(victim) in fails[0]
    assert "models install --force" in fails[0]  # and the user is told how to fix it
    for entry in REGISTRY:
        if entry is not SMALL:
            assert f"ok   {entry.name}" in proc.stdout

    proc = run_voiceos("models", "install", "--force", SMALL.name, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    proc = run_voiceos("models", "verify", env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"ok   {SMALL.name}" in proc.stdout


@pytest.mark.models
def test_plain_install_also_replaces_a_corrupt_file(private_models: Path) -> None:
    """`install` without --force still re-hashes what is there and re-assembles a corrupt file."""
    env = {"VOICEOS_MODELS_DIR": str(private_models)}
    victim = private_models / SMALL.target
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert run_voiceos("models", "verify", SMALL.name, env=env).returncode != 0
    proc = run_voiceos("models", "install", SMALL.name, env=env)
    assert proc.returncode == 0, proc.stderr
    assert run_voiceos("models", "verify", SMALL.name, env=env).returncode == 0


def test_models_verify_of_an_unknown_name_lists_the_known_ones() -> None:
    proc = run_voiceos("models", "verify", "nosuch")
    err = assert_clean_failure(proc)
    assert "nosuch" in err
    assert all(e.name in err for e in REGISTRY)


# --- bad --llm / --stt ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "role"), [("--llm", "llm"), ("--stt", "stt")])
def test_unknown_model_name_is_one_line_listing_the_known_names(flag: str, role: str, tmp_path: Path) -> None:
    proc = run_voiceos("demo", flag, "nosuch", "--fast", "--no-play", "--input", str(SPEECH / "spk1_snt1.wav"),
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log"))
    err = assert_clean_failure(proc)
    assert "nosuch" in err
    for entry in REGISTRY:
        if entry.role == role:
            assert entry.name in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("flag", "spec"), [("--llm", "Qwen/Qwen2.5-0.5B"), ("--stt", "Systran/faster-whisper-tiny.en"),
                                            ("--llm", "https://huggingface.co/x/y/resolve/main/m.gguf")])
def test_hub_ids_are_refused_as_offline(flag: str, spec: str, tmp_path: Path) -> None:
    proc = run_voiceos("demo", flag, spec, "--fast", "--no-play", "--input", str(SPEECH / "spk1_snt1.wav"),
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log"))
    err = assert_clean_failure(proc)
    assert spec in err and "offline" in err


def test_missing_model_names_models_install(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(MODELS / "registry.toml", models / "registry.toml")
    proc = run_voiceos("demo", "--fast", "--no-play", "--input", str(SPEECH / "spk1_snt1.wav"),
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log"),
                       env={"VOICEOS_MODELS_DIR": str(models)})
    err = assert_clean_failure(proc)
    assert "voiceos models install" in err


def test_a_gguf_path_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all" * 10)
    proc = run_voiceos("demo", "--llm", str(fake), "--fast", "--no-play", "--input", str(SPEECH / "spk1_snt1.wav"),
                       "--out", str(tmp_path / "out"), "--log-dir", str(tmp_path / "log"))
    err = assert_clean_failure(proc)
    assert str(fake) in err and "GGUF" in err


# --- doctor and devices ----------------------------------------------------------------------------------------


@pytest.mark.models
def test_doctor_prints_one_line_per_check_and_passes_here() -> None:
    proc = run_voiceos("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    checks = [line for line in proc.stdout.splitlines() if line.startswith(("ok   ", "FAIL "))]
    names = [line[5:].split(":", 1)[0] for line in checks]
    assert len(names) == len(set(names)), "a check printed twice"
    for needed in ("python", "portaudio", "espeak-ng via pyttsx3", "offline"):
        assert needed in names
        assert f"ok   {needed}:" in proc.stdout, proc.stdout
    for entry in REGISTRY:
        assert f"ok   model {entry.name}:" in proc.stdout
    # every line of stdout is a check, except the optional note about audio devices
    others = [line for line in proc.stdout.splitlines() if line.strip() and line not in checks]
    assert all(line.startswith("note:") for line in others), others


def test_doctor_flags_a_hub_id() -> None:
    proc = run_voiceos("doctor", "--llm", "Qwen/Qwen2.5-0.5B")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert any("Qwen/Qwen2.5-0.5B" in line for line in fails), proc.stdout


def test_doctor_reports_a_missing_model_with_its_fix(tmp_path: Path) -> None:
    shutil.copy(MODELS / "registry.toml", tmp_path / "registry.toml")
    proc = run_voiceos("doctor", env={"VOICEOS_MODELS_DIR": str(tmp_path)})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    for entry in REGISTRY:
        line = next(x for x in proc.stdout.splitlines() if x.startswith(f"FAIL model {entry.name}:"))
        assert "voiceos models install" in line


def test_devices_runs() -> None:
    proc = run_voiceos("devices")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.strip(), "devices printed nothing"
