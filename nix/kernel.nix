# The kernel: the newest one ZFS and bcachefs build for (so the installer can create and
# import pools and bcachefs file systems), and zswap, which compresses pages on their way to
# swap once the install has activated a swap partition (it keeps big builds off slow disks on
# small machines).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixos-images.kernel;
  imagesLib = import ./lib.nix;
  # What a kernel package set must build for the file systems asked for: ZFS's module by its
  # attribute (tasks/filesystems/zfs.nix), bcachefs's from the tools package (#446975).
  checks =
    lib.optionalAttrs cfg.zfs {
      zfs = imagesLib.moduleAttrWorks config.boot.zfs.package.kernelModuleAttribute;
    }
    // lib.optionalAttrs cfg.bcachefs {
      bcachefs =
        set: !((set.callPackage config.boot.bcachefs.package.kernelModule { }).meta.broken or false);
    };
in
{
  options.nixos-images.kernel = {
    zfs = lib.mkOption {
      type = lib.types.bool;
      default = true;
      example = false;
      description = ''
        Support ZFS, and pick a kernel whose ZFS module is not broken. Turn it off (with
        bcachefs) to get nixpkgs' default kernel and a smaller image.
      '';
    };
    bcachefs = lib.mkOption {
      type = lib.types.bool;
      default = true;
      example = false;
      description = ''
        Support bcachefs, an out-of-tree kernel module in nixpkgs since 25.11: the kernel
        picked must also build it unbroken.
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
    })
    (lib.mkIf cfg.bcachefs {
      boot.supportedFilesystems.bcachefs = lib.mkDefault true;
    })
    (lib.mkIf (checks != { }) {
      # The newest kernel every wanted out-of-tree file system module builds for.
      boot.kernelPackages = lib.mkDefault (imagesLib.newestKernel checks pkgs.linuxKernel.packages);
    })
    {
      # LVM RAID needs dm-raid loaded before disko creates it (nixos-anywhere#249).
      boot.kernelModules = [ "dm-raid" ];
    }
    (lib.mkIf cfg.zswap {
      boot.kernelParams = [
        "zswap.enabled=1"
        "zswap.max_pool_percent=50"
        # Better ratio than lzo at little cost, as upstream sets it. No zswap.zpool: both pins'
        # default kernel is 6.18 (nixpkgs#485549), where zswap lost its zpool parameter and
        # always uses zsmalloc (Linux 2ccd9fecd916, "mm: zswap: interact directly with zsmalloc").
        "zswap.compressor=zstd"
      ];
    })
  ];
}
