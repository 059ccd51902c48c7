# Stub of nixpkgs' profiles/base.nix: packages and file systems for an installer. Its list
# definitions are why the unattended image disables it; that is what the stub carries.
{ pkgs, ... }:
{
  environment.systemPackages = [ pkgs.rsync ];
  boot.supportedFilesystems = [ "cifs" ];
}
