"""Importable job functions for tests that need a job to fail or succeed on a real worker."""

import os

FLAG = "BROADCASTER_TEST_JOB_SHOULD_FAIL"


def flaky_job(value: int) -> int:
    """Fails while the flag is set in the environment, then succeeds."""
    if os.environ.get(FLAG):
        raise RuntimeError(f"deliberate failure for {value}")
    return value * 2
