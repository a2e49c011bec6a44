"""Errors that mean "what you gave or asked for is wrong", as opposed to a bug.

Every such error derives from :class:`UserError` and from the built-in type callers already
catch (``ValueError``, ``FileNotFoundError``, ``KeyError``), so library code can be handled
either way. The ``uqcalc`` command prints a :class:`UserError` as one line and exits 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["FileFormatError", "InputError", "MissingInputError", "UnknownNameError", "UserError"]


class UserError(Exception):
    """Base of the errors caused by the user's input (options, files, names)."""


class InputError(UserError, ValueError):
    """An option or argument value is invalid; the message says which and what is allowed."""


class MissingInputError(UserError, FileNotFoundError):
    """A file the user named does not exist."""


class FileFormatError(UserError, ValueError):
    """A file exists but is not what it should be (truncated, corrupted, another format or version)."""


class UnknownNameError(UserError, KeyError):
    """A name (property, backend, study, group) is not one of the known ones; the message lists them."""

    def __str__(self) -> str:  # KeyError quotes its message; a name error reads better plain
        return str(self.args[0]) if self.args else ""
