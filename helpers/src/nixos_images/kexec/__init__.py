"""The kexec launcher: checks the host, carries its identity over, loads the installer, boots it.

manifest       what the tarball holds (written by nixos_images.tarball, read here)
preflight      can this host kexec into this image? pure checks over gathered facts
authorized_keys  root's and the sudo user's keys, made usable by the installer's root
collect        host keys, authorized keys, network, machine-id -> state files in memory
cpio           the state as a newc archive appended to the installer's initrd
load           kexec_file_load / kexec_load with fallback, then the delayed `kexec -e`
launcher       the `kexec/run` command line
"""
