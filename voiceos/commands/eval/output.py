"""The persona scorecard's results: tables on stdout, the JSON file, and `--compare OLD.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from voiceos.commands.eval.scoring import CHECKS, RECALL_KINDS, TARGETS, Ratio, ReplyResult, Scorecard, Tally
from voiceos.errors import VoiceosError

SCHEMA = "voiceos-eval/1"
PASS, FAIL = "pass", "[bold red]FAIL[/]"
REPLY_CHARS = 160  # a reply in the misses table is cut to this many characters


def scorecard_table(card: Scorecard) -> Table:
    """Per check: how often it fired, its target and verdict, and its rate on the tuned and held-out
    conversations apart."""
    table = Table(title=f"persona scorecard ({card.overall.replies} replies; tuned {card.tuned.replies}, "
                        f"held-out {card.held_out.replies})")
    for col in ("check", "count", "rate", "target", "verdict", "tuned", "held-out"):
        table.add_column(col, justify="left" if col in ("check", "verdict") else "right")
    for check in CHECKS:
        verdict = card.passes(check)
        table.add_row(check, str(card.count(check)), _pct(card.rate(check)), _target(check),
                      "-" if verdict is None else PASS if verdict else FAIL,
                      _pct(card.tuned.rate(check)), _pct(card.held_out.rate(check)))
    caught = ", ".join(f"{kind} {n}" for kind, n in card.guard_caught.items()) or "nothing"
    table.caption = (f'most common opener: "{escape(card.opener or "-")}" ({_pct(card.opener_share)} of replies); '
                     f"the guard caught while writing: {caught}; cut {card.guard_cuts} reply(s) short")
    return table


def recall_table(card: Scorecard) -> Table:
    """Per kind of recall probe: hits before and after a session restart."""
    table = Table(title="recall probes (hits / probes)")
    for col in ("recall", "before restart", "after restart", "all", "target", "verdict"):
        table.add_column(col, justify="left" if col in ("recall", "verdict") else "right")
    for kind in RECALL_KINDS:
        score = card.recall[kind]
        verdict = card.recall_passes(kind)
        table.add_row(kind, _ratio(score.before), _ratio(score.after), _ratio(score.all), "all",
                      "-" if verdict is None else PASS if verdict else FAIL)
    return table


def misses_table(card: Scorecard, limit: int = 15) -> Table:
    """The replies that failed a check or missed a recall, the worst first."""
    misses = card.misses()
    table = Table(title=f"replies that missed ({min(limit, len(misses))} of {len(misses)})")
    for col in ("conversation", "turn", "user", "reply", "checks"):
        table.add_column(col, overflow="fold", justify="right" if col == "turn" else "left")
    for result in misses[:limit]:
        reply = result.reply
        text = reply.reply if len(reply.reply) <= REPLY_CHARS else reply.reply[: REPLY_CHARS - 1] + "…"
        shown = (escape(text) or "[dim](nothing)[/]") + (" [dim](cut by the guard)[/]" if reply.guard_cut else "")
        turn = f"{reply.turn}{' (restarted)' if reply.after_restart else ''}"
        table.add_row(escape(reply.script_id), turn, escape(reply.user), shown,
                      escape("; ".join(result.problems)))
    return table


def to_json(card: Scorecard, meta: dict[str, Any]) -> dict[str, Any]:
    """Everything --json writes: the run's facts (`meta`), the summary, and every reply with its checks."""
    return {"schema": SCHEMA, "meta": meta, "summary": summary(card), "replies": [_reply(r) for r in card.results]}


def summary(card: Scorecard) -> dict[str, Any]:
    return {
        "replies": card.overall.replies,
        "passed": card.passed,
        "checks": {check: {"count": card.count(check), "rate": card.rate(check), "target": TARGETS.get(check),
                           "pass": card.passes(check), "tuned_rate": card.tuned.rate(check),
                           "held_out_rate": card.held_out.rate(check)} for check in CHECKS},
        "recall": {kind: {"before": _ratio_json(s.before), "after_restart": _ratio_json(s.after),
                          "all": _ratio_json(s.all), "pass": card.recall_passes(kind)}
                   for kind, s in card.recall.items()},
        "splits": {"tuned": _tally_json(card.tuned), "held_out": _tally_json(card.held_out)},
        "topics": {topic: _tally_json(tally) for topic, tally in card.topics.items()},
        "opener": {"text": card.opener, "share": card.opener_share},
        "guard": {"caught": card.guard_caught, "cut": card.guard_cuts},
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VoiceosError(f"{path}: no such file to compare with") from exc
    except (OSError, ValueError) as exc:
        raise VoiceosError(f"{path}: not a voiceos eval JSON file ({exc})") from exc
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        schema = document.get("schema") if isinstance(document, dict) else None
        raise VoiceosError(f"{path}: not a voiceos eval JSON file ({f'it is {schema}' if schema else 'no schema'})")
    if not isinstance(document.get("summary"), dict) or not isinstance(document["summary"].get("checks"), dict):
        raise VoiceosError(f"{path}: not a voiceos eval JSON file (no summary)")
    return document


def compare_table(old: dict[str, Any], new_doc: dict[str, Any]) -> tuple[Table, bool]:
    """Each check's rate and each recall's hit rate against `old`, and whether anything got worse by more
    than one reply's worth (one reply, or one probe, of the smaller run)."""
    old_s, new_s = old["summary"], new_doc["summary"]
    meta = old.get("meta", {})
    table = Table(title=f"compared with the run of {meta.get('time', '?')} ({meta.get('model', '?')})")
    for col in ("check", "old rate", "new rate", "change", "verdict"):
        table.add_column(col, justify="left" if col in ("check", "verdict") else "right")
    worse_any = False
    allowance = 1 / max(1, min(int(old_s.get("replies") or 0), int(new_s.get("replies") or 0)))
    for check in CHECKS:
        o, n = old_s["checks"].get(check, {}).get("rate"), new_s["checks"].get(check, {}).get("rate")
        worse = o is not None and n is not None and n - o > allowance + 1e-9
        worse_any |= worse
        table.add_row(check, _pct(o), _pct(n), _change(o, n), _verdict(o, n, worse))
    for kind in RECALL_KINDS:
        o_all = old_s.get("recall", {}).get(kind, {}).get("all", {})
        n_all = new_s.get("recall", {}).get(kind, {}).get("all", {})
        o, n = _rate(o_all), _rate(n_all)
        probes = min(int(o_all.get("probes") or 0), int(n_all.get("probes") or 0))
        worse = o is not None and n is not None and o - n > 1 / max(1, probes) + 1e-9
        worse_any |= worse
        table.add_row(f"recall {kind}", _pct(o), _pct(n), _change(o, n), _verdict(o, n, worse))
    return table, worse_any


def _reply(result: ReplyResult) -> dict[str, Any]:
    reply = result.reply
    return {
        "conversation": reply.script_id, "topic": result.topic, "held_out": result.held_out, "turn": reply.turn,
        "after_restart": reply.after_restart, "user": reply.user, "reply": reply.reply, "opener": result.opener,
        "checks": {hit.check: hit.detail for hit in result.hits},
        "recall": None if result.recall_kind is None else {
            "kind": result.recall_kind, "expected": list(result.expected), "hit": result.recalled},
        "guard_hits": list(reply.guard_hits), "guard_cut": reply.guard_cut,
        "first_token_ms": reply.first_token_ms, "reply_ms": reply.reply_ms,
    }


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {"replies": tally.replies, "counts": dict(tally.counts)}


def _ratio_json(ratio: Ratio) -> dict[str, Any]:
    return {"hits": ratio.hits, "probes": ratio.total, "rate": ratio.rate}


def _rate(ratio: dict[str, Any]) -> float | None:
    rate = ratio.get("rate") if isinstance(ratio, dict) else None
    return float(rate) if rate is not None else None


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.0f}%"


def _ratio(ratio: Ratio) -> str:
    return f"{ratio.hits}/{ratio.total}" if ratio.total else "-"


def _target(check: str) -> str:
    if check not in TARGETS:
        return "-"
    return "0" if TARGETS[check] == 0 else f"≤ {_pct(TARGETS[check])}"


def _change(old: float | None, new: float | None) -> str:
    return "-" if old is None or new is None else f"{(new - old) * 100:+.0f} pts"


def _verdict(old: float | None, new: float | None, worse: bool) -> str:
    if old is None or new is None:
        return "-"
    return "[bold red]WORSE[/]" if worse else "ok"

