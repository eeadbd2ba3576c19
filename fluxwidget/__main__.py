"""`python -m fluxwidget`: the shell commands."""

import sys

from .cli import main

sys.exit(main())
