# The Python that lints and tests the helpers in Nix (the lint check, the dev shell, the CI's
# module evaluation): the helpers' own typer (without rich), and the test tools.
{ pkgs, helpers }:
pkgs.python3.withPackages (ps: [
  helpers.typer
  ps.qrcode
  ps.mypy
  ps.pytest
  ps.pytest-timeout
  ps.hypothesis
  ps.pyyaml
])
