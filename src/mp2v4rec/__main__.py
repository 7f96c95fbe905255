"""``python -m mp2v4rec``: the ``mp2v4rec`` command (see mp2v4rec.cli)."""

import sys

from mp2v4rec.cli import main

sys.exit(main())
