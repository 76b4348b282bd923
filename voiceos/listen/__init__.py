"""Hearing the user: voice activity, where a turn ends, and what was said (Whisper)."""
