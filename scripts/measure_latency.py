#!/usr/bin/env python3
"""Voice-to-voice latency measured from outside, on one clock, through real PortAudio streams.

A private PulseAudio daemon gives voiceos a virtual microphone and speaker (voiceos.audio.virtual_devices).
Each utterance is played into the combine sink `vboth`, which feeds voiceos's microphone (`vmic`) and, at
the same instant, the left channel of the stereo sink `vrec`, whose right channel is voiceos's speaker
(`vspk`). One recording of `vrec.monitor` holds the user's words (left) and Samantha's replies (right) on a
single clock. For each utterance:
  latency = first reply sound after it − end of its speech (both found in the recording),
  violation when a reply sound starts before the user's speech has ended,
and the session log must hold exactly one `turn` per utterance.

With `--view`, voiceos chat runs with its live view in a tmux pane (a real terminal), else with its line
output to a file: the two, back to back, show what the view costs.

    .venv/bin/python scripts/measure_latency.py --corpus ../shared/speech --runs 2 --json latency.json
    .venv/bin/python scripts/measure_latency.py --corpus ../shared/speech --view
    .venv/bin/python scripts/measure_latency.py a.wav b.wav -- --llm gemma-3-270m
Arguments after `--` go to `voiceos chat`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voiceos.audio.virtual_devices import PulseRig  # noqa: E402
from voiceos.audio.wav import read_wav, write_wav  # noqa: E402
from voiceos.listen.word_timing import frame_energy_db  # noqa: E402
from voiceos.loop.record import TurnRecord, turns_of  # noqa: E402
from voiceos.measure.session_log import read_logs  # noqa: E402
from voiceos.view.tmux_pane import TmuxPane  # noqa: E402

RATE = 16_000
HOP = 160  # 10 ms


def speech_end_s(samples: np.ndarray) -> float:
    """End of the user's last word: the last loud 10 ms frame (within 30 dB of the peak) that Silero VAD
    also calls speech — so background noise or applause after the last word does not count."""
    from voiceos.config import FRAME_SAMPLES
    from voiceos.listen.vad import StreamingVad

    probs = StreamingVad().probabilities(samples)
    energy = frame_energy_db(samples)
    vad_index = np.minimum(np.arange(len(energy)) * HOP // FRAME_SAMPLES, len(probs) - 1)
    speech = probs[vad_index] >= 0.5  # each 10 ms frame takes the 32 ms VAD frame it falls in
    n = len(energy)
    loud = np.flatnonzero((energy[:n] > energy.max() - 30.0) & speech[:n])
    return (loud[-1] + 1) * HOP / RATE if loud.size else 0.0


def locate(rec: np.ndarray, utt: np.ndarray, start: int) -> tuple[int, float]:
    """Sample offset of `utt` inside `rec` (searching from `start`) and the gain it was recorded at."""
    seg = rec[start:]
    n = 1 << int(np.ceil(np.log2(len(seg) + len(utt))))
    corr = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(utt, n)), n)[: len(seg) - len(utt) + 1]
    k = int(np.argmax(corr))
    aligned = seg[k : k + len(utt)]
    gain = float(np.dot(aligned, utt) / max(np.dot(utt, utt), 1e-9))
    return start + k, gain


def sound_runs(samples: np.ndarray, floor_db: float = -45.0, gap_s: float = 1.0) -> list[tuple[int, int]]:
    """(start, end) samples of stretches of sound at least 30 ms long, merged across gaps under `gap_s`."""
    loud = frame_energy_db(samples) > floor_db
    runs: list[tuple[int, int]] = []
    k = 0
    while k < len(loud):
        if loud[k:k + 3].all():
            j = k
            while j < len(loud) and loud[j]:
                j += 1
            if runs and (k - runs[-1][1]) * HOP < gap_s * RATE:
                runs[-1] = (runs[-1][0], j)
            else:
                runs.append((k, j))
            k = j
        else:
            k += 1
    return [(a * HOP, b * HOP) for a, b in runs]


def wait_for(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def settled(log_dir: Path, quiet_s: float, timeout: float) -> None:
    """Wait until the log has been still for `quiet_s` with every reply that started accounted for."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        records = read_logs(log_dir)
        if len(records) != last:
            last, since = len(records), time.monotonic()
        started = sum(r["type"] == "reply_start" for r in records)
        ended = sum(r["type"] == "turn" for r in records)
        if time.monotonic() - since >= quiet_s and started <= ended:
            return
        time.sleep(0.1)


class ChatRun:
    """`voiceos chat` on the rig: its line output to a file, or (`view`) its live view in a tmux pane."""

    def __init__(self, rig: PulseRig, work: Path, args: list[str], *, view: bool) -> None:
        command = [str(ROOT / ".venv/bin/voiceos"), "chat", *args]
        env = rig.env() | {"XDG_DATA_HOME": str(work / "data")}  # a memory of its own: the user's would change
        self.pane: TmuxPane | None = None                           # the prompts (and runs each other's)
        self.proc: subprocess.Popen[bytes] | None = None
        if view:
            self.pane = TmuxPane(work / "tmux", command, env, stderr=work / "chat.err", cwd=ROOT).start()
        else:
            self.proc = subprocess.Popen([*command, "--plain"], env=env, stdout=(work / "chat.out").open("w"),
                                         stderr=(work / "chat.err").open("w"))

    def stop(self) -> None:
        """Ctrl-C, or `q` in the view: the session ends as a person ends it."""
        if self.pane is not None:
            self.pane.send("q")
            self.pane.wait(20)
            self.pane.close()
        elif self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run(wavs: list[Path], runs: int, voiceos_args: list[str], keep: Path | None, view: bool = False) -> dict:
    work = Path(keep or tempfile.mkdtemp(prefix="voiceos-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    log_dir = work / "logs"
    if log_dir.exists():  # an earlier run's log would pass for this one's (its "ready" above all)
        shutil.rmtree(log_dir)
    utterances = [(p, read_wav(p)[0]) for p in wavs] * runs
    rig = PulseRig(work / "pulse").start()
    chat = None
    try:
        chat = ChatRun(rig, work, ["--log-dir", str(log_dir), *voiceos_args], view=view)
        if not wait_for(lambda: any(r["type"] == "ready" for r in read_logs(log_dir)), 180):
            raise SystemExit(f"voiceos chat did not become ready; see {work}/chat.err")
        rec_path = work / "user-left-samantha-right.wav"
        recorder = rig.record("vrec.monitor", rec_path, channels=2)
        rec_started = time.monotonic()
        played_at: list[float] = []  # seconds into the recording, roughly (where to look for each utterance)
        time.sleep(1.0)
        for i, (path, samples) in enumerate(utterances):
            clip = work / f"utt-{i:02d}.wav"
            write_wav(clip, samples)
            done_before = sum(r["type"] in ("turn", "dropped") for r in read_logs(log_dir))
            played_at.append(time.monotonic() - rec_started)
            rig.play(clip, "vboth").wait()
            print(f"[{i + 1}/{len(utterances)}] played {path.name}", file=sys.stderr)
            wait_for(lambda n=done_before: sum(r["type"] in ("turn", "dropped") for r in read_logs(log_dir)) > n, 60)
            settled(log_dir, quiet_s=2.0, timeout=60)  # her reply over, and nothing else going on
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=5)
    finally:
        if chat is not None:
            chat.stop()
        rig.stop()
    result = analyse(rec_path, utterances, read_logs(log_dir), work, played_at)
    result["summary"]["view"] = view
    return result


def analyse(rec_path: Path, utterances: list[tuple[Path, np.ndarray]], records: list[dict], work: Path,
            played_at: list[float]) -> dict:
    with wave.open(str(rec_path), "rb") as w:
        stereo = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    user = stereo[:, 0].astype(np.float32) / 32768.0
    her = stereo[:, 1].astype(np.float32) / 32768.0
    rows = []
    pos = 0
    located = []
    for (path, utt), at in zip(utterances, played_at):
        lo = max(pos, int((at - 1.0) * RATE))  # the same file may be played again later: look near its time
        offset, _gain = locate(user[: lo + int(4.0 * RATE) + len(utt)], utt, lo)
        located.append((path, utt, offset))
        pos = offset + len(utt)
    replies = sound_runs(her)
    for i, (path, utt, offset) in enumerate(located):
        end = offset + int(speech_end_s(utt) * RATE)
        limit = located[i + 1][2] if i + 1 < len(located) else len(her)
        mine = [(a, b) for a, b in replies if offset <= a < limit]
        onset = mine[0][0] if mine else None
        rows.append({
            "file": path.name,
            "speech_end_s": round(end / RATE, 3),
            "reply_onset_s": round(onset / RATE, 3) if onset is not None else None,
            "latency_ms": round((onset - end) / RATE * 1000.0, 1) if onset is not None else None,
            "started_early": bool(onset is not None and onset < end),
            "replies_heard": len(mine),
        })
    turns = turns_of(records)
    lat = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
    inside = [v for t in turns if (v := t.timings_ms.voice_to_voice) is not None]
    summary = {
        "utterances": len(rows),
        "turns_logged": len(turns),
        "dropped": sum(r["type"] == "dropped" for r in records),
        "one_reply_each": len(turns) == len(rows) and all(r["replies_heard"] == 1 for r in rows),
        "started_early": sum(r["started_early"] for r in rows),
        "median_ms": round(statistics.median(lat), 1) if lat else None,
        "p90_ms": round(float(np.percentile(lat, 90)), 1) if lat else None,
        "max_ms": max(lat) if lat else None,
        "inside_voice_to_voice_median_ms": round(statistics.median(inside), 1) if inside else None,
        "stages_median_ms": stage_medians(turns),
        "recording": str(rec_path),
        "work_dir": str(work),
    }
    return {"summary": summary, "utterances": rows}


STAGES = {  # where a turn's time went, from its trace_ms (ms after the end of the user's speech)
    "pause_heard": lambda t: t.pause_heard,
    "whisper": lambda t: t.stt_done - t.job_started,
    "prompt_read": lambda t: t.read_done - t.stt_done,
    "first_clause": lambda t: t.first_clause - t.read_done,
    "synthesis": lambda t: t.first_audio_ready - t.first_clause,
    "turn_decided": lambda t: t.turn_decided,
}


def stage_medians(turns: list[TurnRecord]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, stage in STAGES.items():
        values = []
        for turn in turns:
            try:
                value = stage(turn.trace_ms)
            except TypeError:  # a stage this turn never reached (no speculation, an error)
                continue
            if value is not None:
                values.append(value)
        if values:
            out[name] = round(statistics.median(values), 1)
    tokens = [t.llm.read_tokens for t in turns if t.llm.read_tokens]
    if tokens:
        out["prompt_read_tokens"] = statistics.median(tokens)
    return out


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wavs", nargs="*", type=Path)
    parser.add_argument("--corpus", type=Path, help="a folder of WAV files")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--keep", type=Path, help="keep recordings and logs in this folder")
    parser.add_argument("--view", action="store_true",
                        help="run chat with its live view in a tmux pane (default: --plain, lines to a file)")
    args = parser.parse_args(argv)
    wavs = list(args.wavs) + (sorted(args.corpus.glob("*.wav")) if args.corpus else [])
    if not wavs:
        parser.error("give WAV files or --corpus DIR")
    result = run(wavs, args.runs, extra, args.keep, args.view)
    for row in result["utterances"]:
        flag = "  STARTED EARLY" if row["started_early"] else ""
        print(f"{row['file']:>20s}  {row['latency_ms'] if row['latency_ms'] is not None else 'no reply':>8} ms{flag}")
    s = result["summary"]
    print(f"median {s['median_ms']} ms, p90 {s['p90_ms']} ms, max {s['max_ms']} ms over {s['utterances']} utterances; "
          f"turns logged {s['turns_logged']}, one reply each: {s['one_reply_each']}, "
          f"started early: {s['started_early']}"
          f"; voiceos's own voice-to-voice median {s['inside_voice_to_voice_median_ms']} ms"
          f" ({'live view in tmux' if s['view'] else '--plain'})")
    print("stage medians (ms after the end of speech, from each turn's trace_ms): "
          + ", ".join(f"{name} {value}" for name, value in s["stages_median_ms"].items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    ok = s["one_reply_each"] and s["started_early"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
