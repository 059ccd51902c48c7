# Stub of nixpkgs' installer/netboot/netboot-minimal.nix (read at 14fd9760 and in the newer
# stored copy NixOS/nixpkgs#421082 made, before both pins): all of its definitions. The
# mkOverride 500 ones are weaker than installation-device's plain ones; the 70s beat them.
{ lib, ... }:
{
  imports = [
    ./netboot-base.nix
    ../../profiles/minimal.nix
  ];
  documentation.man.enable = lib.mkOverride 500 true;
  hardware.enableRedistributableFirmware = lib.mkOverride 70 false;
  networking.networkmanager.enable = lib.mkOverride 500 false;
  system.extraDependencies = lib.mkOverride 70 [ ];
}
