#!/bin/sh
# kexec/run: boot this machine into the NixOS installer, keeping its ssh host keys,
# authorized keys, network and machine-id. Options: kexec/run --help; docs/kexec.md.
#
# POSIX sh (dash, bash, busybox sh). The host may have no Python and no dynamic loader where
# our programs were linked to find one, so the bundled interpreter is started through the
# bundled loader, with a clean environment: the host's PYTHON* settings are not ours.
# -P keeps the caller's directory off sys.path (root may run this from anyone's /tmp);
# not -I or -E, which would ignore the PYTHONHOME the bundle is found by.
set -eu
# CDPATH= : an exported CDPATH would make cd print the directory, and $here hold it twice.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P)
# PATH is fixed, not the caller's: root runs what it finds there (systemd-run). Debian's
# secure_path, then NixOS's system profile, where /usr/bin holds only env.
exec env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/current-system/sw/bin \
  SUDO_USER="${SUDO_USER:-}" DOAS_USER="${DOAS_USER:-}" \
  PYTHONHOME="$here/python" \
  "$here/@loader@" --library-path "$here/lib" "$here/bin/python3" -S -B -P \
  -m nixos_images.kexec.launcher --tarball-dir "$here" "$@"
