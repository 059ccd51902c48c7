# What keeps an image lean, as checks on its evaluated configuration: the stub evaluation
# (tests/nix/eval.nix) and the real nixosSystem of every image at both pins (flake.nix,
# checks.<system>.lean) run the same list. Pure: { lib }: config: unattended: [ { what; ok; } ].
{ lib }:
config: unattended:
let
  names = map (p: p.pname or p.name or "") config.environment.systemPackages;
in
[
  {
    what = "no nixpkgs channel (a copy of nixpkgs' source, nix-env at boot)";
    ok = !config.system.installer.channel.enable;
  }
  {
    what = "su without X authority forwarding (xauth, X11 libraries)";
    ok = !config.security.pam.services.su.forwardXAuth;
  }
  {
    what = "the default DHCP networks only with networking.useDHCP";
    ok =
      config.networking.useDHCP
      || !(config.systemd.network.networks ? "99-ethernet-default-dhcp");
  }
]
++ lib.optionals unattended [
  {
    what = "no man pages (man-db)";
    ok = !config.documentation.man.enable && !(lib.elem "man-db" names);
  }
  {
    what = "no extra dependencies (stdenv, busybox, jq kept for offline builds)";
    ok = config.system.extraDependencies == [ ];
  }
  {
    what = "no documentation";
    ok = !config.documentation.enable && !config.documentation.nixos.enable;
  }
  {
    what = "no nixpkgs in the registry";
    ok = config.nix.registry == { };
  }
  {
    what = "no nano, sudo or polkit";
    ok =
      !config.programs.nano.enable && !config.security.sudo.enable && !config.security.polkit.enable;
  }
  {
    what = "no 32-bit loader stub";
    ok = config.environment.ldso32 == null;
  }
  {
    what = "dbus-broker (no X11 libraries)";
    ok = config.services.dbus.implementation == "broker";
  }
]
