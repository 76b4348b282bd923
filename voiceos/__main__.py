from voiceos.commands.cli import main

raise SystemExit(main())
