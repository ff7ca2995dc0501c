"""The one exception type for mistakes a user can fix: a bad option, a missing corpus, an empty table.

The command line turns a ``UserError`` (and a missing file) into exit status 2 with its message on
one line; anything else is a bug and shows its traceback. ``UserError`` is a ``ValueError``, so code
that already catches ``ValueError`` around a user's input keeps working.
"""


class UserError(ValueError):
    """Bad input or a bad option, with a message that names the argument and the fix."""
