"""``python -m serlib`` runs the ``serlib`` command."""

from serlib.cli import main

raise SystemExit(main())
