"""``python -m gateway``: the same as the ``citybook-gateway`` console script."""

from gateway.cli import main

raise SystemExit(main())
