"""``python -m dmlfaces`` runs the command line."""

import sys

from dmlfaces.cli import main

sys.exit(main())
