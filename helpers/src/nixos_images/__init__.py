"""Helpers that run inside nixos-images installers and in the kexec launcher."""
