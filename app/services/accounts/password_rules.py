"""What a new password must be: 10 to 128 characters, not one of the most common passwords, and not a few characters
repeated."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from app.services.errors import ServiceError

MIN_LENGTH = 10
MAX_LENGTH = 128  # a passphrase fits; megabytes sent to the hash do not
MIN_DIFFERENT_CHARACTERS = 4
# The most common passwords long enough to pass MIN_LENGTH, lower-cased; where they come from is in the NOTICE.
COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines())


def check(password: str) -> None:
    """Raise ServiceError, saying what to change, for a password that would be easy to guess."""
    if len(password) < MIN_LENGTH:
        raise _refused(f"Your password needs at least {MIN_LENGTH} characters. A short sentence is easy to "
                       "remember and hard to guess.")
    if len(password) > MAX_LENGTH:
        raise _refused(f"That password is too long: please keep it to {MAX_LENGTH} characters or fewer.")
    if password.lower() in _common_passwords():
        raise _refused("That is one of the most common passwords, the first ones anyone tries. Please choose "
                       "another.")
    if len(set(password)) < MIN_DIFFERENT_CHARACTERS:
        raise _refused("That password uses only a few different characters, which makes it easy to guess. "
                       "Please choose another.")


def _refused(message: str) -> ServiceError:
    return ServiceError(message, field="password")
