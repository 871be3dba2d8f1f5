"""``python -m sandbox up ...``: the same as ``flk sandbox up ...``."""

import sys

from sandbox.cli import main

raise SystemExit(main(sys.argv[1:]))
