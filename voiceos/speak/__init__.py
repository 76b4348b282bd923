"""Speaking: reply text into clauses, clauses into speech, speech to the speaker while she is still thinking."""
