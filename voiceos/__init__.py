"""voiceos: a local, offline voice companion.

The pipeline, one module per stage:
audio_in -> vad -> endpoint -> stt -> llm (persona, memory) -> splitter -> tts -> audio_out,
driven by `conversation`, measured by `ledger` and `cpu_meter`, logged by `session_log`.
"""

__version__ = "0.1.0"
