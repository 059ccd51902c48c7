# The installer base every image shares: the helpers package and the shared modules.
# Image modules (kexec/, netboot/, image/) import this and the nixpkgs profile they build on.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
{
  imports = [
    ./console.nix
    ./deadman.nix
    ./firmware.nix
    ./kernel.nix
    ./networkd.nix
    ./nix-settings.nix
    ./tor.nix
  ];

  options.nixos-images = {
    helpers = lib.mkOption {
      type = lib.types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = lib.literalExpression "pkgs.callPackage ./package.nix { }";
      description = "The nixos-images helpers package the installer's units run.";
    };
  };

  config = {
    # mDNS makes the installer reachable as nixos-installer.local on a LAN.
    networking.hostName = lib.mkDefault "nixos-installer";

    # sshd with root login: the installer exists to be logged into remotely. Keys come from
    # the old system (kexec) or the banner's random password (ISO, netboot).
    services.openssh.enable = lib.mkDefault true;
    services.openssh.settings.PermitRootLogin = lib.mkDefault "yes";
    # A key given at boot (the systemd credential ssh.authorized_keys.root: kernel command
    # line or SMBIOS type 11) is added to root's, on every image, before sshd starts.
    # (systemd's own provision.conf is not in NixOS at the pins: NixOS/nixpkgs#543333.)
    systemd.services.root-keys = {
      description = "Add the ssh keys given at boot to root's";
      wantedBy = [ "multi-user.target" ];
      # sshd.socket too: with startWhenNeeded, sshd starts from its socket.
      before = [
        "sshd.service"
        "sshd.socket"
      ];
      unitConfig.ConditionCredential = "ssh.authorized_keys.root";
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ImportCredential = "ssh.authorized_keys.root";
        ExecStart = lib.getExe' config.nixos-images.helpers "root-keys";
      };
    };

    # No documentation in any image, as nix-community/nixos-images: it lives in RAM, and the
    # manual and man pages are a browser away from anyone at the console (the banner shows the
    # network addresses). installation-device.nix turns it on at mkForce's priority (50), and
    # netboot-minimal sets man at mkOverride 500 (man-db follows it, whatever
    # documentation.enable says): 49 beats both; set your own at a stronger one to keep it.
    documentation.enable = lib.mkOverride 49 false;
    documentation.nixos.enable = lib.mkOverride 49 false;
    documentation.man.enable = lib.mkOverride 49 false;

    system = {
      # An installer's state lives in RAM: nothing to upgrade in place.
      stateVersion = lib.mkDefault config.system.nixos.release;
    }
    # installation-device imports cd-dvd/channel.nix: a copy of nixpkgs' source in the
    # image and a nix-env run at every first boot, for a channel nobody uses with flakes
    # (nixos-anywhere copies the system closure; upstream nixos-images turns it off too).
    # Only where the option exists: this module is also for installers of one's own.
    // lib.optionalAttrs (options.system.installer.channel.enable or null != null) {
      installer.channel.enable = lib.mkDefault false;
    };
    # programs/shadow.nix turns X authority forwarding on for su at normal priority; it puts
    # xauth and X11 libraries in the closure, and an installer has no X display.
    security.pam.services.su.forwardXAuth = lib.mkForce false;

    # What nixos-anywhere, disko and clan run on the installer: nixos-facter (hardware
    # report; else nixos-anywhere falls back to `nix shell nixpkgs#nixos-facter`, which needs
    # the network), disko and jq (disko's scripts with --no-disko-deps), rsync (extra files),
    # nixos-install-tools (nixos-install, nixos-enter).
    environment.systemPackages = [
      pkgs.nixos-facter
      pkgs.disko
      pkgs.jq
      pkgs.rsync
      pkgs.nixos-install-tools
    ];
  };
}
