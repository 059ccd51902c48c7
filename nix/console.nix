# Consoles: kernel output on VGA and the serial port; a fresh random root password every
# boot; the login banner (password, addresses, onion address, QR code) on tty1 and, in
# ASCII, on the serial console.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixos-images;
  imagesLib = import ./lib.nix;
  serial = imagesLib.serialConsole pkgs.stdenv.hostPlatform.system;
  bin = name: lib.getExe' cfg.helpers name;
in
{
  options.nixos-images = {
    rootPassword = {
      enable = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Set a fresh random passphrase (EFF word list) as root's password at every boot,
          before sshd and the gettys start, and keep it in a root-only file for the banner.
        '';
      };
      words = lib.mkOption {
        type = lib.types.ints.between 3 16;
        default = 4;
        description = "Words in the passphrase (each adds 12.9 bits).";
      };
    };
    banner.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Show the login banner on tty1 (redrawn when addresses or the onion address change)
        and once, in ASCII, on the serial console. tty1 then has no login prompt: log in on
        tty2 to tty6 or over ssh.
      '';
    };
    serialConsole = lib.mkOption {
      type = lib.types.str;
      default = serial;
      defaultText = lib.literalExpression ''"ttyS0" (x86_64) or "ttyAMA0" (aarch64)'';
      description = "The serial console's device name.";
    };
  };

  config = lib.mkMerge [
    {
      # Kernel messages on both: a rented server's console is usually serial, a KVM/IPMI
      # view or a laptop shows VGA. The last console= is /dev/console.
      boot.kernelParams = [
        "console=tty0"
        "console=${cfg.serialConsole},115200"
      ];
    }

    (lib.mkIf cfg.rootPassword.enable {
      systemd.services.root-password = {
        description = "Set a random root password for this boot";
        wantedBy = [ "multi-user.target" ];
        before = [
          "systemd-user-sessions.service"
          "getty.target"
          "sshd.service"
        ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = "${bin "root-password"} --words ${toString cfg.rootPassword.words}";
        };
      };
    })

    (lib.mkIf cfg.banner.enable {
      systemd.services.installer-banner = {
        description = "Installer login banner on tty1";
        wantedBy = [ "multi-user.target" ];
        after = [
          "root-password.service"
          "systemd-user-sessions.service"
        ];
        serviceConfig = {
          ExecStart = "${bin "installer-banner"} --watch";
          StandardInput = "tty";
          StandardOutput = "tty";
          TTYPath = "/dev/tty1";
          TTYReset = true;
          TTYVTDisallocate = true;
          Restart = "always";
        };
      };
      # The banner owns tty1.
      systemd.services."getty@tty1".enable = false;
      systemd.services."autovt@tty1".enable = false;

      systemd.services.installer-banner-serial = {
        description = "Installer login banner on the serial console";
        wantedBy = [ "multi-user.target" ];
        after = [ "root-password.service" ];
        before = [ "serial-getty@${cfg.serialConsole}.service" ];
        unitConfig.ConditionPathExists = "/dev/${cfg.serialConsole}";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${bin "installer-banner"} --ascii --width 80 --height 24";
          StandardOutput = "tty";
          TTYPath = "/dev/${cfg.serialConsole}";
        };
      };
    })
  ];
}
