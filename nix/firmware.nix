# The firmware of common server NICs, for images that carry no redistributable firmware
# (netboot-minimal, which the kexec and netboot images build on, turns it off): a NIC whose
# driver cannot start without its firmware comes back as nothing after a kexec, the commonest
# way to lose a server. kexec/run's drivers check reads what is here (kexec/drivers.py).
# A subset of linux-firmware, by directory; nixpkgs compresses it as it does all firmware.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixos-images.nicFirmware;
in
{
  options.nixos-images.nicFirmware = {
    enable = lib.mkOption {
      type = lib.types.bool;
      # With all redistributable firmware on, this subset adds nothing.
      default = !config.hardware.enableRedistributableFirmware;
      defaultText = lib.literalExpression "!config.hardware.enableRedistributableFirmware";
      description = "Carry the firmware of common server NICs (`directories`).";
    };
    directories = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "[A-Za-z0-9_./-]+");
      # Realtek (r8169: RTL8125/8126 and others need theirs), Broadcom NetXtreme (tg3) and
      # NetXtreme II (bnx2, bnx2x: no link without it), QLogic FastLinQ (qed/qede), Cavium
      # LiquidIO, Chelsio T4-T6 (cxgb4), Intel E800 (ice: its DDP package, else safe mode).
      default = [
        "rtl_nic"
        "tigon"
        "bnx2"
        "bnx2x"
        "qed"
        "liquidio"
        "cxgb4"
        "intel/ice"
      ];
      example = [
        "rtl_nic"
        "mellanox"
      ];
      description = "Directories of linux-firmware's lib/firmware to carry.";
    };
  };

  config = lib.mkIf cfg.enable {
    hardware.firmware = [
      (pkgs.runCommand "nic-firmware" { } ''
        mkdir -p $out/lib/firmware
        cd ${pkgs.linux-firmware}/lib/firmware
        for dir in ${lib.escapeShellArgs cfg.directories}; do
          if [ -e "$dir" ]; then
            # -L: linux-firmware links duplicates to one copy, maybe in another directory.
            cp -rL --parents "$dir" $out/lib/firmware/
          else
            echo "nixos-images.nicFirmware: linux-firmware has no $dir" >&2
            exit 1
          fi
        done
      '')
    ];
  };
}
