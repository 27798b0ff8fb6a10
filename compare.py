"""The command line, run from a checkout: `python compare.py --task linreg` (see backend_compare/cli/;
backend_compare/entry.py starts it).

Installed, the same program is the `backend-compare` command.
"""

import sys

from backend_compare.entry import main

if __name__ == "__main__":
    sys.exit(main(prog="compare.py"))
