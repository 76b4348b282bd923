"""Measuring: the session clock, CPU use in the pauses (the pause ledger), LLM rates, the session log."""
