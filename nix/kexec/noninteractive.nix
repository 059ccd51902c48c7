# The unattended installer (what nixos-anywhere uses by default): a mix-in for any image
# module (kexec-installer, netboot-installer, image-installer), as nix-community/nixos-images'
# `noninteractive` is. Nothing a person at a console needs, and a smaller closure: it lives in
# RAM, on machines with as little as 1 GiB. docs/images.md, "The unattended image", says what is cut
# and what is not, and why.
{
  lib,
  pkgs,
  modulesPath,
  ...
}:
{
  disabledModules = [
    # base.nix adds packages and file systems to lists that cannot be taken back out.
    "profiles/base.nix"
  ];

  imports = [
    # No perl in the closure: systemd stage 1, /etc as an overlay, users by userborn.
    (modulesPath + "/profiles/perlless.nix")
  ];

  # perlless forbids perl in the closure, which would also forbid nixos-install-tools and
  # nixos-facter's dependencies: the installer needs them.
  system.forbiddenDependenciesRegexes = lib.mkForce [ ];

  # A way back when the installer cannot come up, and nobody is at the console to see why:
  # a failed stage 1 panics (boot.panic_on_fail: stage-1-init.sh@a4c4c8b7 exits PID 1; with
  # systemd's stage 1, initrd.nix@0c3e6c49's panic-on-fail unit, wanted by emergency.target,
  # triggers sysrq c) and panic=30 reboots 30 s later, usually into the old system on disk,
  # which the kexec never touched. Stage 2 carries on past a failed mount instead of waiting
  # in an emergency shell. (The interactive images keep their emergency shells: a person may
  # be at the console, and docs/images.md says why.)
  boot.kernelParams = [
    "panic=30"
    "boot.panic_on_fail"
    # nouveau's mode setting leaves some NVIDIA cards with a black screen or a hang at boot;
    # nothing here draws on the card (upstream's unattended image sets the same).
    "nouveau.modeset=0"
  ];
  systemd.enableEmergencyMode = lib.mkDefault false;
  # And when it boots but nobody can reach it (no network, no sshd): back to the old system
  # after 30 minutes without a login or a disk touched (nix/deadman.nix; kexec/run --deadman
  # changes it per run).
  nixos-images.deadman.enable = lib.mkDefault true;

  # Logins are by the old system's ssh keys; nobody reads the console.
  nixos-images.banner.enable = lib.mkDefault false;
  nixos-images.rootPassword.enable = lib.mkDefault false;


  # The store paths an unattended install never uses: a stdenv with gcc, a copy of nixpkgs
  # in the registry, nano, strace and perl as default packages, sudo and polkit (root is
  # logged in everywhere), the 32-bit loader stub.
  system.extraDependencies = lib.mkForce [ ];
  nix.registry = lib.mkForce { };
  programs.nano.enable = lib.mkDefault false;
  security.sudo.enable = false; # beats installation-device's mkDefault true
  security.polkit.enable = lib.mkForce false;
  environment.ldso32 = null;
  # What disko's scripts call when run with --no-disko-deps, and what people reach for.
  environment.defaultPackages = lib.mkForce [
    pkgs.parted
    pkgs.gptfdisk
    pkgs.e2fsprogs
  ];
  # dbus-broker: no X11 libraries in the closure.
  services.dbus.implementation = lib.mkDefault "broker";

  # base.nix's file systems, less the ones with huge closures (cifs) or no users left.
  boot.supportedFilesystems = [
    "ext4"
    "btrfs"
    "f2fs"
    "ntfs"
    "vfat"
    "xfs"
  ];
}
