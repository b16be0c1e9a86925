"""``python -m gateway``: the smsgw command."""

import sys

from gateway.cli import main

sys.exit(main())
