# Stub of nixpkgs' installer/cd-dvd/installation-cd-base.nix (@00976b19, older than the
# pins: its isoName lines became image.* in iso-image.nix in 25.05, see iso-image.nix).
{ config, lib, ... }:
{
  imports = [
    ./iso-image.nix
    ../../profiles/base.nix
    ../../profiles/installation-device.nix
  ];
  system.stateVersion = lib.mkDefault config.system.nixos.release;
}
