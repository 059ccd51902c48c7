# Stub of nixpkgs' profiles/installation-device.nix (read 10590564850, older than the pins;
# later changes from facts): the definitions the images depend on, at nixpkgs' priorities.
{ lib, pkgs, ... }:
{
  system.nixos.variant_id = lib.mkDefault "installer";
  documentation.enable = lib.mkImageMediaOverride true;
  documentation.nixos.enable = lib.mkImageMediaOverride true;
  services.getty.autologinUser = "nixos";
  services.openssh = {
    enable = lib.mkDefault true;
    settings.PermitRootLogin = lib.mkDefault "yes";
  };
  nix.settings.trusted-users = [ "nixos" ];
  security.polkit.enable = true;
  security.sudo.enable = lib.mkDefault true;
  system.extraDependencies = [ pkgs.stdenv ];
  # Since 25.11 (#421082, merged 2025-07, facts): NetworkManager on at normal priority, and
  # rsync among the default packages.
  networking.networkmanager.enable = true;
  environment.defaultPackages = [ pkgs.rsync ];
}
