#!/bin/sh
# Installer side of the kexec hand-off; the installer's initrd runs it before switching root.
#
#   handoff.sh FROM ROOT STATE
#
# FROM   the state kexec/run appended to the initrd (/nixos-images/state in the initramfs)
# ROOT   the root file system being switched to (ssh keys, machine-id go there)
# STATE  the installer's state directory, in the /run the booted system will see (the
#        network state goes to STATE/network, where restore-network reads it)
# The directories come from helpers/src/nixos_images/data/layout.json (nix/kexec/default.nix),
# and so do the state's file names and modes: placeholders between at signs, which Nix fills in
# (nix/lib.nix renderHandoff) before this script goes into the initrd.
#
# Busybox and coreutils alike: only mkdir, cp, chmod, chown, cat. A missing part of the
# state is skipped (the installer then makes new host keys or a new machine-id); the
# script never fails the boot.
set -u
from=$1 root=$2 state=$3

[ -d "$from" ] || exit 0
umask 022 # directories made here (/etc on an empty root) must be world-readable

# install SRC DEST MODE: copy, then set owner root and the mode. The copy is made under
# umask 077, so a secret is never readable by others in between.
install_file() {
  (umask 077 && cp "$1" "$2") && chown 0:0 "$2" && chmod "$3" "$2"
}

if [ -d "$from/@hostKeys@" ]; then
  mkdir -p "$root/etc/ssh"
  for key in "$from"/@hostKeys@/ssh_host_*; do
    [ -f "$key" ] || continue
    case $key in
      *.pub) install_file "$key" "$root/etc/ssh/${key##*/}" @hostKeysPublicMode@ ;;
      *) install_file "$key" "$root/etc/ssh/${key##*/}" @hostKeysMode@ ;;
    esac
  done
fi

if [ -s "$from/@authorizedKeys@" ]; then
  mkdir -p "$root/root/.ssh"
  chmod 0700 "$root/root" "$root/root/.ssh" # root's home is private, as NixOS makes it
  install_file "$from/@authorizedKeys@" "$root/root/.ssh/authorized_keys" @authorizedKeysMode@
fi

if [ -s "$from/@machineId@" ]; then
  mkdir -p "$root/etc"
  install_file "$from/@machineId@" "$root/etc/machine-id" @machineIdMode@
fi

if [ -d "$from/@network@" ]; then
  mkdir -p "$state/@network@"
  for f in "$from"/@network@/*; do
    [ -f "$f" ] && install_file "$f" "$state/@network@/${f##*/}" @networkMode@
  done
fi
exit 0
