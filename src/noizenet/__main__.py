"""``python -m noizenet`` (and ``torchrun -m noizenet``) runs the command line."""

from noizenet.cli import main

raise SystemExit(main())
