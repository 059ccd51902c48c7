"""The kexec launcher: checks the host, carries its identity over, loads the installer, boots it.

models           the closed sets: load syscalls, how the boot is started
manifest         what the tarball holds (written by nixos_images.tarball, read here)
flags            --kexec-extra-flags, sorted to the kexec runs that mean them
preflight        can this host kexec into this image? every check, pure, over gathered facts
authorized_keys  root's and the sudo user's keys, made usable by the installer's root
sshd_config      the old sshd's settings for each user, from `sshd -T` or its config
network          the old host's network: ip's dumps, DNS, drivers, DHCP identities
collect          host keys, authorized keys, network, machine-id -> state files in memory
plan             what kexec/run found out before changing anything
report           the dry run's report, as JSON or for a person
cpio             the state as a newc archive appended to the installer's initrd
load             kexec_file_load / kexec_load with fallback, then the delayed `kexec -e`
launcher         the `kexec/run` command line, and the launch
"""
