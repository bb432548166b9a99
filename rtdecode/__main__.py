"""``python -m rtdecode`` → the CLI."""

import sys

from rtdecode.cli import main

sys.exit(main())
