# A Tor onion service for ssh: reachable behind NAT and firewalls without port forwarding.
# The banner shows its address (layout.json's onion.hostname) and puts it in the QR code.
# nix-community/nixos-images names the option tor-ssh.enable and the service hidden-ssh
# (/var/lib/tor/onion/hidden-ssh/hostname): both work here, with the same meaning.
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixos-images.tor;
  inherit ((import ./lib.nix).onion) service;
in
{
  imports = [
    (lib.mkAliasOptionModule [ "tor-ssh" "enable" ] [ "nixos-images" "tor" "enable" ])
  ];

  options.nixos-images.tor.enable = lib.mkOption {
    type = lib.types.bool;
    default = false;
    description = "Offer ssh as a Tor onion service (the ISO and netboot images turn it on).";
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.services.openssh.enable;
        message = ''
          nixos-images.tor forwards its onion service to sshd, but services.openssh is off:
          enable it, or set nixos-images.tor.enable = false.
        '';
      }
    ];

    services.tor = {
      enable = true;
      # The service's name makes its directory: /var/lib/tor/onion/<service>.
      relay.onionServices.${service}.map = [ 22 ];
    };
  };
}
