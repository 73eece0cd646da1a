"""`python -m leadpipe.cli`."""

import sys

from leadpipe.cli import main

sys.exit(main())
