# The dead-man switch (helpers/src/nixos_images/deadman.py): when nobody has logged in (ssh, or
# a command typed at a console) within the deadline after boot and no disk was touched,
# reboot. After a kexec, a reboot goes back through the firmware to the old system on disk, so
# a machine whose network did not come back returns to its owner by itself. Once anyone logs
# in it stands down; once an install begins on a disk it also sets kernel.panic=0 (a half-done
# install must not be rebooted away by a panic either) and finishes.
#
# Adjustable at boot: nixos-images.deadman=MINUTES|off on the kernel command line (kexec/run
# --deadman puts it there). Without `enable`, the switch runs only when booted with it.
{
  config,
  lib,
  ...
}:
let
  cfg = config.nixos-images.deadman;
  inherit ((import ./lib.nix).deadman)
    parameter
    stateDir
    finished
    loginMark
    ;
in
{
  options.nixos-images.deadman = {
    enable = lib.mkEnableOption ''
      the dead-man switch from every boot: reboot when nobody logged in and no disk was touched
      within `minutes`. Without it, the switch only runs when the kernel command line asks for
      it (${parameter}=MINUTES)
    '';
    minutes = lib.mkOption {
      type = lib.types.ints.between 1 99999;
      default = 30;
      example = 15;
      description = ''
        Minutes after boot to wait for a first login before rebooting, unless the kernel
        command line says otherwise (${parameter}=MINUTES or off).
      '';
    };
  };

  config = {
    systemd.tmpfiles.rules = [ "d ${stateDir} 0755 root root -" ];
    # The consoles log root in automatically: nobody is there until someone types a command.
    # PS0 is expanded after bash reads a command, before it runs it (bash(1)).
    programs.bash.interactiveShellInit = lib.mkAfter ''
      PS0="''${PS0-}\$(: > ${stateDir}/${loginMark} 2>/dev/null)"
    '';
    systemd.timers.nixos-images-deadman = {
      description = "Dead-man switch: reboot unless someone logs in";
      wantedBy = [ "timers.target" ];
      # Every 15 s: a login or a disk write is noticed before the next check could reboot.
      timerConfig = {
        OnBootSec = "15s";
        OnUnitActiveSec = "15s";
        AccuracySec = "1s";
      };
      # Off by default: only a boot that asks for it runs the switch (no Python every 15 s).
      unitConfig.ConditionKernelCommandLine = lib.mkIf (!cfg.enable) parameter;
    };
    systemd.services.nixos-images-deadman = {
      description = "Dead-man switch: reboot unless someone logs in";
      # journalctl (logind's sessions since boot) and systemctl (the reboot).
      path = [ config.systemd.package ];
      # Finished (a disk touched): the timer's runs are skipped.
      unitConfig.ConditionPathExists = "!${stateDir}/${finished}";
      serviceConfig = {
        Type = "oneshot";
        # A run reads /proc and /sys and the journal: seconds. One that hangs must not stop
        # the next.
        TimeoutStartSec = "60s";
        ExecStart = lib.concatStringsSep " " (
          [ (lib.getExe' config.nixos-images.helpers "nixos-images-deadman") ]
          ++ lib.optional cfg.enable "--minutes ${toString cfg.minutes}"
        );
      };
    };
  };
}
