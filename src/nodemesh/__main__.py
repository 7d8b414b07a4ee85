"""``python -m nodemesh``: the same as the ``nodemesh`` command."""

import sys

from nodemesh.cli import main

sys.exit(main())
