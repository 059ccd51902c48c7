# Stub of nixpkgs' installer/netboot/netboot-base.nix (@03beb85a).
{
  imports = [
    ./netboot.nix
    ../../profiles/base.nix
    ../../profiles/installation-device.nix
  ];
}
