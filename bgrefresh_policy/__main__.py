from ._demo.cli import main

raise SystemExit(main())
