"""``python -m rnaimg_core``: the command line."""

import sys

from rnaimg_core.cli import main

sys.exit(main())
