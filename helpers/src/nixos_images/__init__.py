"""Helpers that run inside nixos-images installers and in the kexec launcher."""

# The package's version, as helpers/pyproject.toml says (tests/test_cli.py checks): here so
# that --version works in the kexec bundle too, which carries modules but no package metadata.
__version__ = "0.1.0"
