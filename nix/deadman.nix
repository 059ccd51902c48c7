# An opt-in dead-man switch: if nobody has logged in over ssh within the timeout, reboot.
# After a kexec, a reboot goes back through the firmware to the old system on disk, so a
# machine whose network did not come back returns to its owner by itself.
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixos-images.deadman;
in
{
  options.nixos-images.deadman = {
    enable = lib.mkEnableOption "rebooting when nobody has logged in over ssh within the timeout";
    minutes = lib.mkOption {
      type = lib.types.ints.positive;
      default = 30;
      description = "Minutes after boot to wait for a first ssh login before rebooting.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = config.services.openssh.enable;
        message = ''
          nixos-images.deadman counts ssh logins, but services.openssh is off: enable it, or
          set nixos-images.deadman.enable = false.
        '';
      }
    ];

    systemd.timers.nixos-images-deadman = {
      description = "Reboot unless someone logged in over ssh";
      wantedBy = [ "timers.target" ];
      timerConfig.OnBootSec = "${toString cfg.minutes}min";
    };
    systemd.services.nixos-images-deadman = {
      description = "Reboot unless someone logged in over ssh";
      path = [ config.systemd.package ];
      serviceConfig.Type = "oneshot";
      # sshd (and sshd-session, OpenSSH >= 9.8) log "Accepted <method> for <user>".
      script = ''
        if [ -n "$(journalctl --boot --quiet --output=cat --grep='^Accepted (publickey|password|keyboard-interactive)' --lines=1)" ]; then
          echo "someone logged in over ssh: staying up"
          exit 0
        fi
        echo "nobody logged in over ssh within ${toString cfg.minutes} minutes: rebooting"
        systemctl reboot
      '';
    };
  };
}
