from secptune.cli import main

raise SystemExit(main())
