"""User errors: faults of the input, the parameters or the paths a user gave, not of the package.

The command line prints a ``UserError`` as one message and exits with status 2; any other exception is a
bug of ours and keeps its traceback. Every error a user can fix by changing what they passed derives from
``UserError`` and says what is wrong, where (file, line, key or value) and how to fix it.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a bad parameter or a refused path; the message names it and the fix."""


class ParameterError(UserError, ValueError):
    """A parameters file or value is malformed or out of the range where it means something."""


class OutputPathError(UserError, FileExistsError):
    """An output path holds something the command does not own (a directory where a file is meant, a user's files)."""
