# Stub of nixpkgs' image/file-options.nix (@5e3666d1, from NixOS/nixpkgs#359328): the image
# file's name parts.
{ config, lib, ... }:
{
  options.image = {
    baseName = lib.mkOption { type = lib.types.str; };
    extension = lib.mkOption { type = lib.types.str; };
    fileName = lib.mkOption {
      type = lib.types.str;
      default = "${config.image.baseName}.${config.image.extension}";
    };
    filePath = lib.mkOption {
      type = lib.types.str;
      default = config.image.fileName;
    };
  };
}
