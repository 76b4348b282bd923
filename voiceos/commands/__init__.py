"""The command line: one module per `voiceos` command."""
