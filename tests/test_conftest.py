"""The suite's own setup (conftest.py): the Hypothesis profile a run gets."""

from __future__ import annotations

import os

from hypothesis import settings

import conftest


def test_the_profile_follows_hypothesis_profile() -> None:
    """Where HYPOTHESIS_PROFILE names the derandomized profile (the Nix build's check phase:
    package.nix sets it, test_nix.py checks that, sandbox_check.py passes it on), this run's
    examples are the same every time; elsewhere Hypothesis draws new ones."""
    wanted = os.environ.get("HYPOTHESIS_PROFILE") == conftest.DERANDOMIZED
    assert settings().derandomize is wanted
    if wanted:
        assert settings().database is None
