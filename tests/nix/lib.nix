# nixpkgs' lib for the evaluation tests: ../shared/nixpkgs-lib beside the repository (or
# NIXPKGS_LIB, or the flake's own input in the Nix CI), made to run on Debian's Nix 2.8.
# lib.fileset reads a path's type with builtins.readFileType (Nix >= 2.14); older Nix
# gets the same answer from the parent directory's listing. Nothing else is changed.
{
  libPath ?
    let
      fromEnv = builtins.getEnv "NIXPKGS_LIB";
    in
    if fromEnv != "" then fromEnv else ../../../shared/nixpkgs-lib/lib,
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
