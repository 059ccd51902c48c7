# Stub of nixpkgs' profiles/minimal.nix (@0148e16d): the definitions the images depend on.
{ lib, ... }:
{
  documentation.enable = lib.mkDefault false;
  documentation.nixos.enable = lib.mkDefault false;
  documentation.man.enable = lib.mkDefault false;
  documentation.info.enable = lib.mkDefault false;
  environment.defaultPackages = lib.mkDefault [ ];
}
