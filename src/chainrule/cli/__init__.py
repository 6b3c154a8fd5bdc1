"""The ``chainrule`` command (``chainrule.cli.main``): ``--version``, ``check``, ``shapes``,
``train``, ``evaluate``, ``graph``. ``python -m chainrule.cli`` runs it too."""

from chainrule.cli.main import main

__all__ = ["main"]
