# Networking: systemd-networkd with DHCP and router advertisements on every NIC, mDNS, and
# restore-network, which brings back the old system's static addresses and routes after a
# kexec (it does nothing where no state was carried over).
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixos-images;
  imagesLib = import ./lib.nix;
  network = "${imagesLib.stateDirs.installer}/network";
in
{
  options.nixos-images.restoreNetwork.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Run restore-network at boot: it turns the network state kexec/run saved
      (/run/nixos-images/state/network) into systemd-networkd units in /run/systemd/network,
      and the same units into a NixOS module for the installed system
      (/run/nixos-images/network.nix). It only runs when that state exists.
    '';
  };

  config = lib.mkMerge [
    {
      # networkd: the units restore-network writes are networkd units, and it handles DHCPv4,
      # SLAAC and DHCPv6 on any interface without a restored configuration.
      networking.useNetworkd = lib.mkDefault true;
      networking.useDHCP = lib.mkDefault true;
      # nixpkgs' installation-device profile turns NetworkManager on (since 25.11, at normal
      # priority). It would turn useDHCP off and take the NICs that restore-network hands
      # to networkd, so it is forced off: networkd for wired links, iwd for wifi (ISO).
      networking.networkmanager.enable = lib.mkForce false;
      services.resolved.enable = lib.mkDefault true;
      # Reachable as <hostname>.local without knowing the DHCP lease: resolved answers mDNS
      # only where it is on globally and on the link (nixpkgs' default DHCP networks, and
      # the units restore-network writes).
      services.resolved.settings.Resolve.MulticastDNS = lib.mkDefault true;
      # Only where nixpkgs defines them (useDHCP): else this would make two networks that
      # match every link and configure nothing.
      systemd.network.networks = lib.mkIf config.networking.useDHCP (
        lib.genAttrs [
          "99-ethernet-default-dhcp"
          "99-wireless-client-dhcp"
        ] (_: { networkConfig.MulticastDNS = lib.mkDefault true; })
      );
      networking.firewall.allowedUDPPorts = [ 5353 ];
    }

    (lib.mkIf cfg.restoreNetwork.enable {
      # Early boot, before networkd reads its units: without DefaultDependencies=no the
      # unit would wait for basic.target, and networkd (ordered after it) with it.
      systemd.services.restore-network = {
        description = "Restore the network of the system kexec/run came from";
        wantedBy = [ "systemd-networkd.service" ];
        wants = [ "network-pre.target" ];
        after = [ "local-fs.target" ];
        before = [
          "network-pre.target"
          "systemd-networkd.service"
        ];
        unitConfig = {
          DefaultDependencies = false;
          ConditionPathExists = network;
        };
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${lib.getExe' cfg.helpers "restore-network"} --nixos-module ${imagesLib.networkModule}";
        };
      };
    })
  ];
}
