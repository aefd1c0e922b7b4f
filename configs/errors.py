"""How the entry points fail: a user's mistake is one line and exit status 2, a bug is a traceback.

A user error is something the user can fix from the message alone: a folder or file that is missing
or unreadable, an option that does not exist, a value of the wrong kind, a dataset folder that breaks
its layout. `--debug` (on any entry point) shows the traceback of those as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

DEBUG_FLAG = "--debug"
USAGE_STATUS = 2


class UserError(ValueError):
    """A mistake in what the user gave; the message names the thing and how to fix it."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError, argparse.ArgumentError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
)


def one_line(error: BaseException) -> str:
    """The message of `error` on one line (jsonargparse spreads a nested type error over several)."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, argparse.ArgumentError):
        text += " (--help lists the options)"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


@contextmanager
def settings_errors(what: str) -> Iterator[None]:
    """ValueErrors raised while the settings become objects are the user's: their constructors check them."""
    try:
        yield
    except ValueError as error:
        if isinstance(error, UserError):
            raise
        raise UserError(f"{what}: {one_line(error)}") from error


def run_entry_point(main: Callable[[list[str]], object], argv: list[str] | None = None) -> None:
    """Run `main(argv)`; a user error prints `error: ...` on stderr and exits 2 (a traceback with `--debug`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        main(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(USAGE_STATUS)
