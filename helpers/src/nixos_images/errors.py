"""Errors that the helpers report to their users as one clean line."""

from __future__ import annotations


class HelperError(Exception):
    """A failure the user can act on: printed as one line, never as a traceback."""

    exit_code = 1


class InputError(HelperError):
    """Bad input (a missing file, invalid JSON, an unexpected shape): exit code 2."""

    exit_code = 2

    def __init__(self, source: object, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
