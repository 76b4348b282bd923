"""Thinking: the worker that transcribes and answers, the prompt it reads, and the reply guard."""
