"""The voice loop that drives the stages, its bookkeeping of turns, the turn record, and the session wiring."""
