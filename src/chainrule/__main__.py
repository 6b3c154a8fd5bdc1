"""``python -m chainrule ...`` runs the ``chainrule`` command (under mpirun or a debugger, say)."""

import sys

from chainrule.cli import main

sys.exit(main())
