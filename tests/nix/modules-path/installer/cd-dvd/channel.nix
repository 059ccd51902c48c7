# Stub of nixpkgs' installer/cd-dvd/channel.nix (read at 0970fc96; no change to it is known
# since): a copy of nixpkgs' source in the image, and nix-env installing it as root's channel
# at first boot.
{
  config,
  lib,
  pkgs,
  ...
}:
{
  options.system.installer.channel.enable =
    lib.mkEnableOption "bundling NixOS/Nixpkgs channel in the installer"
    // {
      default = true;
    };
  config = lib.mkIf config.system.installer.channel.enable {
    nix.registry.nixpkgs.to = {
      type = "path";
      path = "${pkgs.channelSources}/nixos";
    };
    boot.postBootCommands = lib.mkAfter "nix-env -p /nix/var/nix/profiles/per-user/root/channels -i ${pkgs.channelSources}";
  };
}
