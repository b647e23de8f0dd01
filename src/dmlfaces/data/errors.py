"""The one error type for malformed data: it names the file, the line and the fix."""

from __future__ import annotations

import os

from dmlfaces.errors import UserError


class DataFormatError(UserError, ValueError):
    """A data file does not follow its published layout.

    The message reads ``FILE:LINE: problem. Expected: ... Fix: ...`` so a user can open the file at
    the right line and knows what to change.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        problem: str,
        *,
        line: int | None = None,
        expected: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        self.fix = fix
        where = self.path if line is None else f"{self.path}:{line}"
        message = f"{where}: {problem}"
        if expected:
            message += f". Expected: {expected}"
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)
