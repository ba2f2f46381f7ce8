"""`python -m simulators.fleet`: see simulators.fleet.demo."""

import sys

from simulators.fleet.demo import main

sys.exit(main())
