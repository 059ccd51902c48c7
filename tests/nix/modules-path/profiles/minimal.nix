# Stub of nixpkgs' profiles/minimal.nix (read 426089414): the definitions the images depend on.
{ lib, ... }:
{
  documentation.enable = lib.mkDefault false;
  documentation.nixos.enable = lib.mkDefault false;
  documentation.man.enable = lib.mkDefault false;
  documentation.info.enable = lib.mkDefault false;
  environment.defaultPackages = lib.mkDefault [ ];
}
