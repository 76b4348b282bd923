"""Errors a user can act on: the CLI prints their message on one line and exits non-zero."""


class VoiceosError(Exception):
    """An expected failure with a message meant for the user (no traceback)."""

    exit_code = 1


class ModelError(VoiceosError):
    """A model is missing, corrupt or unknown."""

    exit_code = 3


class AudioInputError(VoiceosError):
    """Audio that cannot be read: corrupt, empty, or an unsupported format."""

    exit_code = 4


class DeviceError(VoiceosError):
    """No usable audio device, or a device that vanished."""

    exit_code = 5


class ConfigError(VoiceosError):
    """A bad configuration file or option."""

    exit_code = 2


class Cancelled(Exception):
    """A speculative job was called off (the user went on talking); raised inside the worker that runs it."""


class LlmServerError(VoiceosError):
    """The LLM server (`--llm-url`) cannot be reached, or went away."""

    exit_code = 6
