"""Test support shipped with the library: ``opinfo``, the table of every op with its independent
reference, inputs and tolerances (``chainrule check`` and the test-suite read it)."""
