"""The sound card's two sides: audio in (microphone, WAV files), audio out (speakers), her echo gated out."""
