# The netboot installer: kernel, initrd and an iPXE script, for PXE/iPXE boot.
#
#   system.build.netbootInstaller   directory: <kernel file>, initrd, netboot.ipxe
#   system.build.netboot            nix-community/nixos-images' layout: <kernel file>, initrd,
#                                   kernel-params, init (for pixiecore and friends)
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  kernel = config.system.boot.loader.kernelFile;
  toplevel = config.system.build.toplevel;
  # name -> file, in a directory of links.
  files =
    name: entries:
    pkgs.linkFarm name (
      lib.mapAttrsToList (file: path: {
        name = file;
        inherit path;
      }) entries
    );
  kernelAndInitrd = {
    ${kernel} = "${config.system.build.kernel}/${kernel}";
    initrd = "${config.system.build.netbootRamdisk}/initrd";
  };
in
{
  imports = [
    (modulesPath + "/installer/netboot/netboot-minimal.nix")
    ../installer.nix
  ];

  # Netbooted machines are often on networks nobody forwards ports for.
  nixos-images.tor.enable = lib.mkDefault true;

  # The uplink of a machine that PXE-booted: the DHCP server that answered the firmware knows
  # its MAC, so the lease is asked for by MAC (ClientIdentifier=mac; networkd's default is a
  # DUID the server has never seen); LLDP tells the switch's name and port, and this machine
  # says its own, for whoever wires the rack (networkctl lldp). The hostname stays
  # nixos-installer.local unless the boot command line gives `systemd.hostname=`, which
  # systemd applies over /etc/hostname. Physical Ethernet only, as nixpkgs' own catch-all.
  systemd.network.networks."50-netboot-uplink" = {
    matchConfig = {
      Type = "ether";
      Kind = "!*";
    };
    networkConfig = {
      DHCP = "yes";
      IPv6AcceptRA = "yes";
      MulticastDNS = "yes";
      LLDP = "yes";
      EmitLLDP = "yes";
    };
    dhcpV4Config = {
      ClientIdentifier = "mac";
      UseHostname = "no";
    };
  };

  system.build.netboot = files "netboot" (
    kernelAndInitrd
    // {
      kernel-params = "${toplevel}/kernel-params";
      init = "${toplevel}/init";
    }
  );

  system.build.netbootInstaller = files "nixos-netboot-installer-${pkgs.stdenv.hostPlatform.system}" (
    kernelAndInitrd // { "netboot.ipxe" = "${config.system.build.netbootIpxeScript}/netboot.ipxe"; }
  );
}
