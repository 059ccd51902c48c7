# Stub of nixpkgs' installer/netboot/netboot-minimal.nix (read 34124348453; the
# NetworkManager override is from facts: weaker than installation-device's definition).
{ lib, ... }:
{
  imports = [
    ./netboot-base.nix
    ../../profiles/minimal.nix
  ];
  networking.networkmanager.enable = lib.mkOverride 500 false;
}
