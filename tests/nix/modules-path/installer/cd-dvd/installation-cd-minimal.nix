# Stub of nixpkgs' installer/cd-dvd/installation-cd-minimal.nix (read 34448189549).
{
  imports = [ ./installation-cd-base.nix ];
  isoImage.edition = "minimal";
}
