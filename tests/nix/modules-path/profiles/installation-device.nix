# Stub of nixpkgs' profiles/installation-device.nix: the definitions on options the images
# set or that add to the closure, at nixpkgs' priorities. Read at 01363563 (older than the
# pins) and in the newer stored copy that NixOS/nixpkgs#421082 (merged 2025-07, before both
# pins) made: NetworkManager on at normal priority, git and rsync, the channel import.
{ lib, pkgs, ... }:
{
  imports = [ ../installer/cd-dvd/channel.nix ];

  system.nixos.variant_id = lib.mkDefault "installer";
  documentation.enable = lib.mkImageMediaOverride true;
  documentation.nixos.enable = lib.mkImageMediaOverride true;
  users.users.nixos = {
    isNormalUser = true;
    extraGroups = [
      "wheel"
      "networkmanager"
      "video"
    ];
    initialHashedPassword = "";
  };
  users.users.root.initialHashedPassword = "";
  services.getty.autologinUser = "nixos";
  services.openssh = {
    enable = lib.mkDefault true;
    settings.PermitRootLogin = lib.mkDefault "yes";
  };
  nix.settings.trusted-users = [ "nixos" ];
  security.polkit.enable = true;
  security.sudo.enable = lib.mkDefault true;
  system.extraDependencies = [
    pkgs.stdenvNoCC
    pkgs.busybox
    pkgs.makeInitrdNGTool
  ]
  ++ pkgs.jq.all;
  networking.networkmanager.enable = true;
  environment.defaultPackages = [ pkgs.rsync ];
  programs.git.enable = lib.mkDefault true;
}
