"""`python -m scaler` is the `prescaler` command."""

from scaler.cli import main

raise SystemExit(main())
