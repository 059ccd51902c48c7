# Stub of nixpkgs' installer/cd-dvd/installation-cd-base.nix (read 132415022, older than the
# pins: its isoName lines became image.* in iso-image.nix in 25.05, facts).
{ config, lib, ... }:
{
  imports = [
    ./iso-image.nix
    ../../profiles/base.nix
    ../../profiles/installation-device.nix
  ];
  system.stateVersion = lib.mkDefault config.system.nixos.release;
}
