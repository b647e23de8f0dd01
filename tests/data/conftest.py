"""Fixtures shared by the data readers' tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_SEPARATORS = {" ": "\t ", "\t": "  "}  # every space becomes a tab and a space, every tab two spaces

# How an editor or another operating system may re-save a clean file; every reader must read them all alike.
RESAVED: dict[str, Callable[[str], str]] = {
    "byte-order mark": lambda text: "\ufeff" + text,
    "CRLF line ends": lambda text: text.replace("\n", "\r\n"),
    "CR line ends": lambda text: text.replace("\n", "\r"),
    "blank lines": lambda text: "\n \n" + text.replace("\n", "\n\n\t \n") + "\n\n",
    "trailing whitespace": lambda text: text.replace("\n", " \t \n"),
    "other separators": lambda text: "".join(_SEPARATORS.get(c, c) for c in text),
    "all at once": lambda text: "\ufeff\r\n" + "".join(_SEPARATORS.get(c, c) for c in text).replace("\n", " \r\n\r\n"),
}


@pytest.fixture(params=sorted(RESAVED))
def resave(request: pytest.FixtureRequest) -> Callable[[str], bytes]:
    """One way of re-saving: clean text -> the bytes of the re-saved file."""
    variant = RESAVED[request.param]
    return lambda text: variant(text).encode("utf-8")
