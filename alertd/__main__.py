"""``python -m alertd`` runs the same command line as the ``alertd`` script."""

from __future__ import annotations

import sys

from alertd.cli import main

sys.exit(main())
