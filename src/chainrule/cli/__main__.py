"""``python -m chainrule.cli ...`` runs the ``chainrule`` command."""

import sys

from chainrule.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
