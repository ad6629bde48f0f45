"""`python -m cutover.cli`: the same as the `cutover` command."""

import sys

from cutover.cli.main import main

sys.exit(main())
