# Stub of nixpkgs' installer/netboot/netboot-base.nix (read 1054801989).
{
  imports = [
    ./netboot.nix
    ../../profiles/base.nix
    ../../profiles/installation-device.nix
  ];
}
