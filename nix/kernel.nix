# The kernel: the newest one ZFS builds for (so the installer can create and import pools),
# and zswap, which compresses pages on their way to swap once the install has activated a
# swap partition (it keeps big builds off slow disks on small machines).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixos-images.kernel;
  imagesLib = import ./lib.nix;
in
{
  options.nixos-images.kernel = {
    zfs = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Support ZFS, and use the newest kernel whose ZFS module is not broken. Turn it off
        to get nixpkgs' default kernel and a smaller image.
      '';
    };
    zswap = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Enable zswap (only acts when a swap device is in use).";
    };
  };

  config = lib.mkMerge [
    (lib.mkIf cfg.zfs {
      boot.supportedFilesystems.zfs = lib.mkDefault true;
      # ZFS refuses to run without a host id. Weaker than mkDefault: a profile that already
      # picks one (nixpkgs' ISO base does) wins without a conflict.
      networking.hostId = lib.mkOverride 1200 "8425e349";
      boot.kernelPackages = lib.mkDefault (
        imagesLib.newestZfsKernel config.boot.zfs.package.kernelModuleAttribute
          pkgs.linuxKernel.packages
      );
    })
    (lib.mkIf cfg.zswap {
      boot.kernelParams = [
        "zswap.enabled=1"
        "zswap.max_pool_percent=50"
      ];
    })
  ];
}
