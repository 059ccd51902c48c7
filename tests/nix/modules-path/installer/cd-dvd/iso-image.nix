# Stub of nixpkgs' installer/cd-dvd/iso-image.nix as of 25.05 (its isoName and isoBaseName
# renamed to image.fileName and image.baseName, `sinceRelease = 2505`; the image.* options
# from NixOS/nixpkgs#359328): it sets image.baseName without mkDefault (so overriding it
# takes mkForce) and builds $out/iso/<image.fileName>.
{
  config,
  lib,
  pkgs,
  ...
}:
{
  imports = [ ../../image/file-options.nix ];

  options.isoImage.edition = lib.mkOption {
    type = lib.types.str;
    default = "";
  };

  config = {
    image.extension = "iso";
    image.baseName = "nixos${lib.optionalString (config.isoImage.edition != "") "-${config.isoImage.edition}"}-${config.system.nixos.label}-${pkgs.stdenv.hostPlatform.system}";
    image.filePath = "iso/${config.image.fileName}";
    system.build.isoImage = pkgs.runCommand config.image.fileName { } "";
  };
}
