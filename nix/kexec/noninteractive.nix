# The kexec installer for unattended installs (what nixos-anywhere uses by default): the
# same hand-off, without what only a person at a console needs. Smaller, so it fits on
# machines with less RAM.
{ lib, pkgs, ... }:
let
  imagesLib = import ../lib.nix;
in
{
  imports = [ ./default.nix ];

  nixos-images.kexec.tarballName = lib.mkDefault (
    imagesLib.assetNames pkgs.stdenv.hostPlatform.system
  ).kexecNoninteractive;

  # Logins are by the old system's ssh keys; nobody reads the console.
  nixos-images.banner.enable = lib.mkDefault false;
  nixos-images.rootPassword.enable = lib.mkDefault false;

  # Documentation and the default interactive packages are for people at a console.
  documentation.enable = lib.mkOverride 49 false;
  documentation.nixos.enable = lib.mkOverride 49 false;
  environment.defaultPackages = lib.mkDefault [ ];
}
