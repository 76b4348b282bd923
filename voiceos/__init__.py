"""voiceos: a local, offline voice companion.

The folders follow the sound, from the microphone to her voice:

    audio/     microphone.py, wav_source.py ──► AudioChunk (16 kHz mono, session clock)
                 │  echo_gate.py: her own voice cancelled and gated
    listen/    vad.py (Silero) ──► turn_detector.py (+ turn_end_rules.py, smart_turn.py) ──► turn_events.py
    loop/      voice_loop.py drives it all: turn_state.py, going_on.py, record.py (TurnRecord), session.py
                 │  jobs (think/jobs.py) ▼                        ▲ events (think/events.py)
    think/     responder.py, the worker: hearing.py (listen/transcriber.py, Whisper) → prompt_fitting.py
               (conversation.py, persona.py, user_profile.py) → reply_writer.py (guard.py, their_facts.py)
    llm/       engine.py (llama.cpp, model.py's LanguageModel) or served.py (a server), blockers.py, prompt_format.py
                 │  clauses ▼
    speak/     splitter.py → voice_worker.py (tts.py: espeak-ng) ──► audio/speaker.py

    measure/   clock.py, cpu_meter.py, ledger.py (the pause ledger), calibration.py, session_log.py, stats.py
    loop/      loop_events.py, announcer.py: what the loop announces, to listeners that never hold it up
    view/      the live view of chat and demo: model.py (from the events) → layout.py (rich) → live_view.py
    commands/  cli.py and one module per command: chat, demo, bench/, eval/, memory, report, doctor, models;
               printer.py (the --plain lines), watching.py (the view or the lines)
    testing.py scripted stand-ins for the models and the sound card, to test the loop without them
"""

__version__ = "0.1.0"
