"""``python -m seqgcn.cli``: the `seqgcn` command."""

import sys

from seqgcn.cli import main

sys.exit(main())
