# Stub of nixpkgs' profiles/base.nix: it adds packages and filesystems for an installer; none
# of its definitions decides a value the images depend on.
{ }
