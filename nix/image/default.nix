# The ISO installer: boots from CD or USB stick, BIOS or UEFI; sshd with a fresh random
# root password every boot, a Tor onion service for ssh, the login banner with a QR code,
# and iwd for wifi.
#
#   system.build.isoImage   $out/iso/nixos-installer-<system>.iso
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  imagesLib = import ../lib.nix;
in
{
  imports = [
    (modulesPath + "/installer/cd-dvd/installation-cd-minimal.nix")
    ../installer.nix
  ];

  # iso-image.nix sets image.baseName without mkDefault, hence mkForce; the file is
  # <baseName>.iso, the release asset's name.
  image.baseName = lib.mkForce (
    lib.removeSuffix ".iso" (imagesLib.assetNames pkgs.stdenv.hostPlatform.system).iso
  );

  nixos-images.tor.enable = lib.mkDefault true;
  # nouveau's mode setting leaves some NVIDIA cards with a black screen at boot (upstream's
  # ISO sets the same); the console then runs on the firmware's framebuffer.
  boot.kernelParams = [ "nouveau.modeset=0" ];
  # A machine booting a CD or stick usually has a screen: VGA is /dev/console.
  nixos-images.primaryConsole = lib.mkDefault "vga";

  # iwd instead of the profile's wpa_supplicant: `iwctl station wlan0 connect <ssid>` is one
  # command, and networkd takes the address from there. Not NetworkManager, which clan's guide
  # and NixOS' own ISO use: it would take the wired NICs from networkd (docs/images.md). Who
  # types the guide's `nmtui` is told the iwd way and gets iwd's client (nmtui.sh).
  networking.wireless.enable = false;
  networking.wireless.iwd.enable = lib.mkDefault true;
  environment.systemPackages = lib.mkIf config.networking.wireless.iwd.enable [
    (pkgs.writeShellScriptBin "nmtui" (builtins.readFile ./nmtui.sh))
  ];
}
