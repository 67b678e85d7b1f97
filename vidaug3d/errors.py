"""The package's one error type."""

from __future__ import annotations

from typing import Any

__all__ = ["VidaugError", "fail"]


class VidaugError(ValueError):
    """Raised for bad input: the message names the argument, the value and what was expected.

    It subclasses ``ValueError``, so ``except ValueError`` catches it too.
    """


def fail(argument: str, value: Any, expected: str) -> VidaugError:
    """Build a ``VidaugError`` in the package's message format.

    Args:
        argument: The name of the offending argument (e.g. ``"video"``, ``"p"``).
        value: The value received (shape, number, ...); shown with ``repr``.
        expected: What was expected instead, as a phrase.

    Returns:
        The error, to be raised by the caller.

    Examples:
        >>> str(fail("p", 1.5, "a probability in [0, 1]"))
        'p: got 1.5, expected a probability in [0, 1]'
    """
    return VidaugError(f"{argument}: got {value!r}, expected {expected}")
