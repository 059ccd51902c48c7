# Stub of nixpkgs' installer/netboot/netboot.nix (@03a5cc69; squashfsCompression from
# NixOS/nixpkgs#230680): the options it declares and the build outputs the images use.
{
  config,
  lib,
  pkgs,
  ...
}:
{
  options.netboot.squashfsCompression = lib.mkOption {
    type = lib.types.str;
    default = "zstd -Xcompression-level 19";
  };

  config = {
    # makeInitrdNG honours boot.initrd.compressor.
    system.build.netbootRamdisk = pkgs.runCommand "initrd" {
      compressor = if lib.isFunction config.boot.initrd.compressor then "function" else config.boot.initrd.compressor;
      squashfs = config.netboot.squashfsCompression;
    } "";
    system.build.netbootIpxeScript = pkgs.runCommand "netboot.ipxe" { } "";
    system.stateVersion = lib.mkDefault config.system.nixos.release;
  };
}
