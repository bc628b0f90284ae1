"""``python -m agentstore``: the same as the ``agentstore`` command."""

import sys

from agentstore.cli import main

sys.exit(main())
