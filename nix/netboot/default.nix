# The netboot installer: kernel, initrd and an iPXE script, for PXE/iPXE boot.
#
#   system.build.netbootInstaller   directory: <kernel file>, initrd, netboot.ipxe
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
{
  imports = [
    (modulesPath + "/installer/netboot/netboot-minimal.nix")
    ../installer.nix
  ];

  # Netbooted machines are often on networks nobody forwards ports for.
  nixos-images.tor.enable = lib.mkDefault true;

  system.build.netbootInstaller =
    let
      kernel = config.system.boot.loader.kernelFile;
    in
    pkgs.linkFarm "nixos-netboot-installer-${pkgs.stdenv.hostPlatform.system}" [
      {
        name = kernel;
        path = "${config.system.build.kernel}/${kernel}";
      }
      {
        name = "initrd";
        path = "${config.system.build.netbootRamdisk}/initrd";
      }
      {
        name = "netboot.ipxe";
        path = "${config.system.build.netbootIpxeScript}/netboot.ipxe";
      }
    ];
}
