# What nixpkgs' own modules (not the profiles) define that the images read or that decides
# their merged values, as stand-ins: each cites the nixpkgs file it mirrors (see ledger.nix
# for how sources are named).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  system = pkgs.stdenv.hostPlatform.system;
in
{
  config = lib.mkMerge [
    {
      # system/boot/kernel.nix (@045d702e)
      boot.kernelParams = [ "loglevel=4" ];
      system.build.kernel = config.boot.kernelPackages.kernel;
      # system/boot/loader/loader.nix: the platform's kernel target.
      system.boot.loader.kernelFile = if system == "aarch64-linux" then "Image" else "bzImage";
      # system/activation/top-level.nix, system/boot/stage-1.nix
      system.build.toplevel = pkgs.runCommand "nixos-system-${config.networking.hostName}-${config.system.nixos.label}" { } "";
      system.build.initialRamdisk = pkgs.runCommand "initrd-${config.boot.kernelPackages.kernel.version}" { } "";
    }
    # services/networking/networkmanager.nix (@01b03551): NetworkManager turns off
    # NixOS' DHCP and refuses wpa_supplicant.
    (lib.mkIf config.networking.networkmanager.enable {
      networking.useDHCP = false;
      assertions = [
        {
          assertion = !config.networking.wireless.enable;
          message = "You can not use networking.networkmanager with networking.wireless.";
        }
      ];
    })
    # tasks/network-interfaces-systemd.nix: useNetworkd runs networkd.
    (lib.mkIf config.networking.useNetworkd { systemd.network.enable = true; })
    # tasks/network-interfaces-systemd.nix: with networkd and useDHCP, every Ethernet and
    # wireless link gets DHCP from these two networks (their names are nixpkgs'); physical
    # Ethernet only (Kind=!*) since NixOS/nixpkgs#347283 (2024).
    (lib.mkIf (config.networking.useNetworkd && config.networking.useDHCP) {
      systemd.network.networks = {
        "99-ethernet-default-dhcp" = {
          matchConfig = {
            Type = "ether";
            Kind = "!*";
          };
          DHCP = "yes";
          networkConfig.IPv6PrivacyExtensions = "kernel";
        };
        "99-wireless-client-dhcp" = {
          matchConfig.WLANInterfaceType = "station";
          DHCP = "yes";
        };
      };
    })
    # misc/man-db.nix@07572e49: man-db's own switch defaults to documentation.man.enable and
    # is not under documentation.enable.
    (lib.mkIf config.documentation.man.enable {
      environment.systemPackages = [ pkgs.man-db ];
    })
    # programs/git.nix
    (lib.mkIf config.programs.git.enable {
      environment.systemPackages = [ pkgs.git ];
    })
    # programs/shadow.nix: su with root's shortcut and X authority forwarding.
    {
      security.pam.services.su = {
        rootOK = true;
        forwardXAuth = true;
        logFailures = true;
      };
    }
    # system/etc/etc-activation.nix (as NixOS/nixpkgs#340722 made it): /etc as an overlay is mounted by
    # systemd's stage 1 only.
    (lib.mkIf config.system.etc.overlay.enable {
      assertions = [
        {
          assertion = config.boot.initrd.systemd.enable;
          message = "`system.etc.overlay.enable` requires `boot.initrd.systemd.enable`";
        }
      ];
    })
    # services/networking/iwd.nix: iwd and wpa_supplicant exclude each other.
    (lib.mkIf config.networking.wireless.iwd.enable {
      assertions = [
        {
          assertion = !config.networking.wireless.enable;
          message = "Only one wireless daemon is allowed at the time: networking.wireless.enable and networking.wireless.iwd.enable are mutually exclusive.";
        }
      ];
    })
  ];
}
