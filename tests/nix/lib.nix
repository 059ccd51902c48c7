# nixpkgs' lib for the evaluation tests: NIXPKGS_LIB's (a directory holding lib's default.nix),
# else the lib of flake.lock's nixos-unstable, fetched by Nix from GitHub (with the lock's
# narHash), made to run on Debian's Nix 2.8. Nothing outside the repository is read unless
# NIXPKGS_LIB says so. lib.fileset reads a path's type with builtins.readFileType
# (Nix >= 2.14); older Nix gets the same answer from the parent directory's listing.
# Nothing else is changed.
{
  libPath ?
    let
      fromEnv = builtins.getEnv "NIXPKGS_LIB";
      locked = (builtins.fromJSON (builtins.readFile ../../flake.lock)).nodes.nixos-unstable.locked;
      nixpkgs = builtins.fetchTarball {
        url = "https://github.com/NixOS/nixpkgs/archive/${locked.rev}.tar.gz";
        sha256 = locked.narHash;
      };
    in
    if fromEnv != "" then fromEnv else "${nixpkgs}/lib",
}:
let
  lib = import libPath;
  pathType =
    path: if dirOf path == path then "directory" else (builtins.readDir (dirOf path)).${baseNameOf path};
in
if builtins ? readFileType then
  lib
else
  lib.extend (_: super: { filesystem = super.filesystem // { inherit pathType; }; })
