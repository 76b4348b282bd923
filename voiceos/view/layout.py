"""The live view drawn from its model: rich renderables, nothing else (no terminal, no threads)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from voiceos.loop.loop_events import HerState
from voiceos.loop.record import TurnRecord
from voiceos.measure.ledger import reading_amount
from voiceos.view.model import LEVEL_CELLS, Exchange, ViewModel

WATERFALL_CELLS = 40
STATE_STYLES = {
    HerState.LISTENING: "bold green",
    HerState.HEARING: "bold cyan",
    HerState.THINKING: "bold yellow",
    HerState.SPEAKING: "bold magenta",
    HerState.STOPPED: "bold red",
}
KEYS = "q quit · m mute · ? help"
HELP = """\
[bold]q[/] or Ctrl-C   end the session (her reply in flight is cut, the log is closed)
[bold]m[/]             mute or unmute the microphone (she hears silence while muted)
[bold]?[/]             this help, on and off

[bold]state[/]         listening · hearing you · thinking (in your pause, or writing her reply) · speaking
[bold]you[/]           your words as they are recognised (dim while they may still change)
[bold]samantha[/]      her reply as it is written; the part you have heard is bright
[bold]pauses[/]        each pause she noticed: its length, the CPU-seconds left idle in it, what she did with it;
              below, the session's total and what that idle time could have read
[bold]latency[/]       the last turn, from the end of your speech: end of turn decided, speech recognised,
              first token written, first sound of her reply"""


def render(model: ViewModel) -> RenderableType:
    """The whole view (call with `model.lock` held)."""
    if model.help_shown:
        return Group(_header(model), Panel(Text.from_markup(HELP), title="help", border_style="blue"),
                     _footer(model))
    return Group(_header(model), _conversation(model), _pauses(model), _waterfall(model.last_turn), _footer(model))


def _header(model: ViewModel) -> RenderableType:
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(justify="right")
    state = Text("Samantha is ")
    if model.state is None:
        state.append("starting…", style="dim")
    else:
        state.append(model.state.value, style=STATE_STYLES[model.state])
    grid.add_row(state, _level(model))
    return Panel(grid, title="voiceos", border_style="blue")


def _level(model: ViewModel) -> Text:
    if model.muted:
        return Text("mic MUTED", style="bold red")
    text = Text("mic ")
    text.append("█" * model.level, style="green" if model.level < LEVEL_CELLS * 0.85 else "red")
    text.append("·" * (LEVEL_CELLS - model.level), style="dim")
    return text


def _conversation(model: ViewModel) -> RenderableType:
    lines: list[Text] = []
    for exchange in model.exchanges:
        lines.extend(_exchange_lines(exchange))
    if model.words or model.reply_written:
        you = Text("you      › ", style="bold")
        you.append(model.words or "…", style="" if model.words_final else "italic dim")
        lines.append(you)
    if model.reply_written:
        her = Text("samantha › ", style="bold")
        spoken = model.reply_spoken
        rest = model.reply_written[len(spoken):] if model.reply_written.startswith(spoken) else model.reply_written
        her.append(spoken, style="bold magenta")
        her.append(rest, style="dim")
        lines.append(her)
    if not lines:
        lines.append(Text("(talk to her: your words appear here as they are recognised)", style="dim"))
    return Panel(Group(*lines), title="conversation", border_style="blue")


def _exchange_lines(exchange: Exchange) -> list[Text]:
    you = Text("you      › ", style="bold")
    you.append(exchange.heard)
    her = Text("samantha › ", style="bold")
    her.append(exchange.reply or "…")
    if exchange.cut_reason:
        her.append(f" [{exchange.cut_reason}]", style="bold red")
    v2v = exchange.voice_to_voice_ms
    her.append(f"   ({v2v:.0f} ms)" if v2v is not None else "", style="dim")
    return [you, her]


def _pauses(model: ViewModel) -> RenderableType:
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    table.add_column("turn", justify="right", width=4)
    table.add_column("pause", justify="right", width=7)
    table.add_column("idle CPU-s", justify="right", width=10)
    table.add_column("what she did with it", ratio=1)
    for row in model.pauses:
        did = ", ".join(row.did) or "nothing yet"
        if row.ended_turn:
            did += " — your turn ended"
        table.add_row(str(row.turn), f"{row.seconds:.2f} s", f"{row.idle_cpu_s:.2f}", did)
    totals = model.totals
    line = Text(f"session: {totals.turns} turn(s), {totals.pause_s:.1f} s of pauses, "
                f"{totals.idle_cpu_s:.1f} CPU-s idle", style="bold")
    if totals.pages is not None:
        line.append(f" — could have read {reading_amount(totals.pages)}")
    line.append(f"; put to work: {totals.used_fraction * 100:.0f}%")
    if totals.samantha_ratio is not None:
        line.append(f"; Samantha ratio {totals.samantha_ratio:,.0f}×")
    return Panel(Group(table, line), title="pauses between your words", border_style="blue")


def _waterfall(record: TurnRecord | None) -> RenderableType:
    if record is None:
        return Panel(Text("(after her first reply)", style="dim"), title="last turn's latency", border_style="blue")
    timings, trace = record.timings_ms, record.trace_ms
    stages = [("end of turn", timings.endpoint), ("speech recognised", trace.stt_done),
              ("first token", timings.llm_first_token), ("first audio", timings.voice_to_voice)]
    longest = max((ms for _name, ms in stages if ms is not None and ms > 0), default=1.0)
    table = Table.grid(padding=(0, 1))
    table.add_column(width=18)
    table.add_column(width=WATERFALL_CELLS)
    table.add_column(justify="right")
    for name, ms in stages:
        if ms is None:
            table.add_row(name, Text("not timed", style="dim"), "")
            continue
        cells = round(WATERFALL_CELLS * max(0.0, ms) / longest)
        table.add_row(name, Text("█" * cells, style="cyan"), f"{ms:6.0f} ms")
    return Panel(table, title=f"last turn's latency (turn {record.turn}, ms after your last word)",
                 border_style="blue")


def _footer(model: ViewModel) -> RenderableType:
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(justify="right")
    grid.add_row(Text(model.status, style="dim", overflow="ellipsis", no_wrap=True), Text(KEYS, style="bold"))
    return grid
