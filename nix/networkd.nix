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
in
{
  options.nixos-images.restoreNetwork.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Run restore-network at boot: it turns the network state kexec/run saved
      (/run/nixos-images/state/network) into systemd-networkd units in /run/systemd/network.
      It only runs when that state exists.
    '';
  };

  config = lib.mkMerge [
    {
      # networkd: the units restore-network writes are networkd units, and it handles DHCPv4,
      # SLAAC and DHCPv6 on any interface without a restored configuration.
      networking.useNetworkd = lib.mkDefault true;
      networking.useDHCP = lib.mkDefault true;
      services.resolved.enable = lib.mkDefault true;
      # Reachable as <hostname>.local without knowing the DHCP lease.
      services.resolved.settings.Resolve.MulticastDNS = lib.mkDefault true;
      networking.firewall.allowedUDPPorts = [ 5353 ];
    }

    (lib.mkIf cfg.restoreNetwork.enable {
      systemd.services.restore-network = {
        description = "Restore the network of the system kexec/run came from";
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-pre.target" ];
        before = [
          "network-pre.target"
          "systemd-networkd.service"
        ];
        unitConfig.ConditionPathExists = "/run/nixos-images/state/network";
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = lib.getExe' cfg.helpers "restore-network";
        };
      };
    })
  ];
}
