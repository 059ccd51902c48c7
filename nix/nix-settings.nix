# Nix on the installer: flakes work out of the box (nixos-anywhere and disko need them).
{ ... }:
{
  nix.settings = {
    experimental-features = [
      "nix-command"
      "flakes"
    ];
    # Installs copy closures from the machine running nixos-anywhere.
    trusted-users = [ "root" ];
  };
}
