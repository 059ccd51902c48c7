#!/bin/sh
# `nmtui` on this ISO, for people following clan's getting-started guide (and NixOS' manual for
# its own ISO): wifi here is iwd, not NetworkManager (docs/images.md says why). Says how, then
# starts iwd's own interactive client.
cat >&2 <<'HINT'
This installer's wifi is iwd, not NetworkManager: in the iwctl prompt below, type
  station wlan0 scan
  station wlan0 get-networks
  station wlan0 connect <your network>
(`device list` shows the name if it is not wlan0; Ctrl-D leaves.) Or in one line:
  iwctl station wlan0 connect <your network>
HINT
exec iwctl "$@"
