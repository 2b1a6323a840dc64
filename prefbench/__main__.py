from prefbench.cli import main

raise SystemExit(main())
