"""`python -m kuzet`: the same as the `kuzet` command."""

import sys

from kuzet.main import main

sys.exit(main())
