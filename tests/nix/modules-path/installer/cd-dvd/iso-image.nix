# Stub of nixpkgs' installer/cd-dvd/iso-image.nix (facts): it sets image.baseName without
# mkDefault (so overriding it takes mkForce) and builds $out/iso/<image.fileName>.
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
