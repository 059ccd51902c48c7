# Stub of nixpkgs' installer/netboot/netboot.nix (read 19122376174; squashfsCompression from
# facts): the options it declares and the build outputs the images use.
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
