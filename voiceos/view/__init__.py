"""The live view of `voiceos chat` and `voiceos demo`: her state, your words, her reply, the pauses and the
latencies, drawn on the terminal while the loop runs.

    model.py      the view's state, from the loop's events (`loop.loop_events`); pure, no terminal
    layout.py     rich renderables from the model
    terminal.py   the key reader (raw keys on their own thread; the terminal restored on every way out)
    live_view.py  all of it on the alternate screen: events read on one thread, drawn ~10 times a second on another
"""
