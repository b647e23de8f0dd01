"""Output ownership: every output appears whole or not at all, and nothing the package did not write is deleted.

A stage killed mid-write must never leave a half-written output under its final name, so writers build it
at a temporary sibling and rename it into place (atomic on POSIX within a directory). Temporaries are named
``.NAME.dmlfaces-TOKEN.tmp``; a directory temporary also gets an owner record ``.NAME.dmlfaces-TOKEN.owner``
beside it, written before the directory, so a later run can prove a leftover is the package's own (a user's
directory that merely looks like one has no record naming it) and remove it.

Replacing a directory output swaps the new one in with one atomic exchange (Linux ``renameat2``) and only
then removes the old one, now under the temporary's name; an interrupt at any point leaves the old or the
new output complete under the final name. Where the exchange is not available, two renames do it and a
later run restores the old output if it was interrupted between them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dmlfaces.errors import OutputPathError

MARKER = "dmlfaces-"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _temporary_name(final: Path, suffix: str, token: str) -> Path:
    return final.with_name(f".{final.name}.{MARKER}{token}{suffix}")


def check_file_output(path: str | os.PathLike[str]) -> None:
    """Raise ``OutputPathError`` if the file output ``path`` is an existing directory (it is never replaced)."""
    final = Path(path)
    if final.is_dir():
        raise OutputPathError(
            f"{final} is a directory, but this output is a file; "
            f"give a file path (e.g. {final / final.name}) or move the directory away"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``path`` is a file: an existing directory there is refused (``OutputPathError``), never removed. On an
    exception the temporary is removed and ``path`` is left untouched.
    """
    final = Path(path)
    check_file_output(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(final, ".tmp", secrets.token_hex(6))
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp)  # the block made a directory where a file was meant; it is ours
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], may_replace: Callable[[Path, Path], None]) -> Iterator[Path]:
    """Yield a new, empty temporary directory beside ``path``; swap it onto ``path`` if the block succeeds.

    ``may_replace(path, new)`` is called before an existing ``path`` is replaced by the finished ``new`` and
    must raise ``OutputPathError`` unless everything in ``path`` was written by the package. Leftovers of earlier runs that
    were killed are cleaned up first (only those with an owner record).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(final)
    token = secrets.token_hex(6)
    owner, tmp = _temporary_name(final, ".owner", token), _temporary_name(final, ".tmp", token)
    owner.write_text(json.dumps({"pid": os.getpid(), "directory": tmp.name}) + "\n", encoding="utf-8")
    tmp.mkdir()
    try:
        yield tmp
        if final.exists() or final.is_symlink():
            if not final.is_dir() or final.is_symlink():
                raise OutputPathError(f"{final} exists and is not a directory; give a new path or move it away")
            may_replace(final, tmp)
            _swap(tmp, final)  # tmp now holds the old output
        else:
            os.rename(tmp, final)
    finally:
        _remove_owned(owner, final)


def recover_directory(final: Path) -> None:
    """Finish what killed runs left beside ``final``: restore an old output caught between two renames, and
    remove temporaries whose owner record names them and whose process is gone."""
    # The escaped glob and the exact match: records of another output whose name merely starts like this one's
    # (``data[1]``, ``data.dmlfaces-x``) are never taken for this one's.
    ours = re.compile(rf"\.{re.escape(final.name)}\.{MARKER}[0-9a-f]{{12}}\.owner")
    for owner in sorted(final.parent.glob(f".{glob.escape(final.name)}.{MARKER}*.owner")):
        if not ours.fullmatch(owner.name):
            continue
        record = _read_owner(owner)
        if record is not None and not _alive(record.get("pid")):
            _remove_owned(owner, final)


def _swap(new: Path, final: Path) -> None:
    """Exchange ``new`` and ``final``: atomically where the kernel can, else by three renames (recoverable)."""
    if _exchange(new, final):
        return
    owner = new.with_name(new.name.removesuffix(".tmp") + ".owner")
    old = new.with_name(new.name.removesuffix(".tmp") + ".old")
    owner.write_text(json.dumps({"pid": os.getpid(), "directory": old.name}) + "\n", encoding="utf-8")
    os.rename(final, old)
    os.rename(new, final)
    os.rename(old, new)  # the old output now sits where the owner record's cleanup removes it


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = getattr(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # e.g. a file system without exchange support
    raise OSError(code, os.strerror(code), str(b))


def _remove_owned(owner: Path, final: Path) -> None:
    """Remove the temporaries of ``owner``'s token, then ``owner``; first put an old output that a swap left
    aside back at ``final`` if nothing is there.

    The record goes last, so a removal interrupted half-way is finished by the next run.
    """
    stem = owner.name.removesuffix(".owner")
    old = owner.with_name(stem + ".old")
    if old.is_dir() and not old.is_symlink() and not (final.exists() or final.is_symlink()):
        os.rename(old, final)  # the three-rename swap stopped after moving the old output aside
    for suffix in (".tmp", ".old"):
        leftover = owner.with_name(stem + suffix)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
    owner.unlink(missing_ok=True)


def _read_owner(owner: Path) -> dict | None:
    try:
        record = json.loads(owner.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a record this package wrote: leave it and what it might name alone
    stem = owner.name.removesuffix(".owner")
    if not isinstance(record, dict) or record.get("directory") not in (stem + ".tmp", stem + ".old"):
        return None
    return record


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return False  # our own earlier attempt in this process has finished or failed
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically (stable bytes for identical content)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
