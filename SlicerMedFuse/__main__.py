"""``python -m SlicerMedFuse`` runs the ``medfuse`` command line."""

import sys

from SlicerMedFuse.cli import main

sys.exit(main())
