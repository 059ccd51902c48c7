# Stub of nixpkgs' installer/cd-dvd/installation-cd-minimal.nix (@14fd9760).
{
  imports = [ ./installation-cd-base.nix ];
  isoImage.edition = "minimal";
}
