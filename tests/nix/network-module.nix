# restore-network's NixOS module (restore-network --emit-nixos) evaluated with nixpkgs' real
# module system against the option ledger (ledger.nix, systemd.network's options with nixpkgs'
# types) and the stand-ins for nixpkgs' own modules (core.nix), next to the user's modules.
# tests/test_nixos_network.py renders the result back into unit sections as nixpkgs does.
{
  module,
  user ? { },
  libPath ? null,
}:
let
  lib = import ./lib.nix (if libPath == null then { } else { inherit libPath; });
  config =
    (lib.evalModules {
      modules = [
        ./ledger.nix
        ./core.nix
        { _module.args.pkgs = import ./pkgs.nix { inherit lib; system = "x86_64-linux"; }; }
        module
        user
      ];
      specialArgs.modulesPath = ./modules-path;
    }).config;
in
{
  failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  inherit (config.systemd.network) networks netdevs;
}
