"""`python -m adapters.cli`: the console script without its installed entry point."""

import sys

from adapters.cli import main

sys.exit(main())
