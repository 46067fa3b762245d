"""``python -m rc_snn``: the ``rc-snn`` command."""

import sys

from .pipeline.cli import main

sys.exit(main())
