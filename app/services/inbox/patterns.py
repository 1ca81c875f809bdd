"""Auto-reply patterns, run on RE2: its time grows linearly with the text, so an admin's `^(a+)+$` cannot hang a
worker as it did on Python's backtracking `re` (28 characters took 10 s, doubling with each one). RE2 has no
backreferences or lookarounds: a pattern using them is refused on save, and a saved one is never run."""

from __future__ import annotations

import functools

import re2

UNSUPPORTED_HINT = "Backreferences such as \\1 and lookarounds such as (?=…) or (?<!…) are not supported."


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str):
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is reported to the admin, not to stderr
    return re2.compile(pattern, options)


def problem(pattern: str) -> str | None:
    """Why RE2 cannot compile a pattern, in a sentence; None when it can."""
    try:
        _compiled(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else "unknown error"
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f"the safe regex engine (RE2) cannot compile it: {reason}. {UNSUPPORTED_HINT}"
    return None


def search(pattern: str, text: str) -> bool:
    """Whether the pattern occurs in the text, ignoring case; a pattern RE2 cannot compile never matches."""
    try:
        return _compiled(pattern).search(text) is not None
    except re2.error:
        return False
