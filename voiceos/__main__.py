from voiceos.cli import main

raise SystemExit(main())
