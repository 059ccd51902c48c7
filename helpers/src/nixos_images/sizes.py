"""Sizes are bytes everywhere; this is the one unit the helpers show them in."""

MiB = 1 << 20
