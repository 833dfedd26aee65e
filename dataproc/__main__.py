"""``python -m dataproc`` is the ``dataproc`` command."""

import sys

from dataproc.cli import main

sys.exit(main())
