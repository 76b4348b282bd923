"""`voiceos eval`: the persona scorecard — scripted conversations (`script`, `conversations.toml`) run as text
through the live turn's code (`runner`), every reply checked (`scoring`), tables and JSON (`output`)."""

from voiceos.commands.eval.command import EvalOptions, run_eval

__all__ = ["EvalOptions", "run_eval"]
