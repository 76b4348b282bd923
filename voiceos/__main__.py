from voiceos.commands.cli import run

run()
