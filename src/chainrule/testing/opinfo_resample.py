"""Op-info rows of issue 12's resampling ops (see ``opinfo.py`` for what a row holds)."""

from __future__ import annotations

from chainrule.testing.opinfo import OpInfo

# fmt: off
ROWS: list[OpInfo] = [
]
# fmt: on
