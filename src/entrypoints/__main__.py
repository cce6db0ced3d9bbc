"""`python -m entrypoints` runs the same CLI as `waitline`."""

from entrypoints.cli import main

raise SystemExit(main())
