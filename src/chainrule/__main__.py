"""``python -m chainrule ...`` runs the ``chainrule`` command (under mpirun or a debugger, say)."""

import sys

from chainrule.cli import main

if __name__ == "__main__":
    sys.exit(main())
