# Nix on the installer: flakes out of the box (nixos-anywhere and disko need them), and the
# settings nix-community/nixos-images' installers have, each a default you can override.
{ lib, ... }:
{
  nix.settings = {
    experimental-features = [
      "nix-command"
      "flakes"
    ];
    # Installs copy closures from the machine running nixos-anywhere.
    trusted-users = [ "root" ];
    # An unreachable substituter costs 5 s, not a minute, per path.
    connect-timeout = lib.mkDefault 5;
    # The installer's own store is a substituter: paths it already has are not fetched.
    extra-substituters = [ "/" ];
    # Enough of a failed build's log to see why.
    log-lines = lib.mkDefault 25;
    # The store is in RAM (tmpfs): collect garbage before it fills up.
    min-free = lib.mkDefault (512 * 1024 * 1024);
    max-free = lib.mkDefault (3000 * 1024 * 1024);
    # Remote builders fetch from caches instead of over this machine's ssh link.
    builders-use-substitutes = lib.mkDefault true;
  };
  # Builds on the installer yield the CPU and the disk to what a person is doing over ssh
  # (and to the closure being copied in), as upstream's and srvos' installers do.
  nix.daemonCPUSchedPolicy = lib.mkDefault "batch";
  nix.daemonIOSchedClass = lib.mkDefault "idle";
  nix.daemonIOSchedPriority = lib.mkDefault 7;
}
