# Consoles: kernel output on VGA and every serial port the platform may use; root logged in on
# every console (as nix-community/nixos-images and clan's docs expect); a fresh random root
# password every boot; the login banner (password, addresses, onion address, QR code) from
# root's autologin shell on tty1 and on each serial console, where Enter or Ctrl-C leaves it
# for the shell.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.nixos-images;
  imagesLib = import ./lib.nix;
  bin = name: lib.getExe' cfg.helpers name;
  serialParams = map (tty: "console=${tty},115200") cfg.serialConsoles;
  # No onion address where Tor does not run (it would say "tor is still starting" forever).
  banner = "${bin "installer-banner"} --watch${lib.optionalString (!cfg.tor.enable) " --no-tor"}";
  # hvc0 too: Xen's and virtio's console, where systemd's getty generator starts a getty of
  # its own when the device exists (logged like a serial port: no password there either).
  serialTtys = lib.concatMapStringsSep "|" (tty: "/dev/${tty}") (cfg.serialConsoles ++ [ "hvc0" ]);
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
    banner.serialPassword = lib.mkOption {
      type = lib.types.bool;
      default = false;
      example = true;
      description = ''
        Show the root password on the serial consoles too. Off by default: cloud providers
        and IPMI log serial console output and keep it; the local screen (tty1) shows it.
      '';
    };
    banner.enable = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Show the login banner from root's autologin shell on tty1 and on each serial console
        (redrawn when addresses or the onion address change; Enter or Ctrl-C gives the shell).
      '';
    };
    serialConsoles = lib.mkOption {
      type = lib.types.listOf (lib.types.strMatching "tty[A-Za-z0-9]+");
      default = imagesLib.serialConsoles pkgs.stdenv.hostPlatform.system;
      defaultText = lib.literalExpression ''[ "ttyS0" ] (x86_64) or [ "ttyAMA0" "ttyS0" ] (aarch64)'';
      example = [ "ttyS1" ];
      description = ''
        Serial consoles for kernel output and the banner. aarch64 has two: ttyAMA0 (PL011:
        QEMU, many boards) and ttyS0 (8250: AWS Graviton, Ampere servers).
      '';
    };
    primaryConsole = lib.mkOption {
      type = lib.types.enum [
        "serial"
        "vga"
      ];
      default = "serial";
      example = "vga";
      description = ''
        Which console's `console=` comes last on the kernel command line, making it
        /dev/console (where systemd prints): the serial ones for servers reached over IPMI or
        a cloud's serial console, VGA for machines with a screen (the ISO).
      '';
    };
  };

  config = lib.mkMerge [
    {
      # Every console gets kernel messages; the last console= is /dev/console.
      boot.kernelParams =
        if cfg.primaryConsole == "serial" then [ "console=tty0" ] ++ serialParams else serialParams ++ [ "console=tty0" ];
      # Root on every console, as upstream's images and clan's docs have it (a person at the
      # console owns the machine anyway), instead of installation-device's `nixos`.
      services.getty.autologinUser = lib.mkForce "root";
    }

    (lib.mkIf cfg.rootPassword.enable {
      systemd.services.root-password = {
        description = "Set root's password for this boot: a random one, or one given at boot";
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
          # A hash given at boot (kernel command line or SMBIOS type 11) sets root's password
          # instead of a random one (systemd.exec(5), ImportCredential=, systemd 254+).
          ImportCredential = "passwd.hashed-password.root";
        };
      };
    })

    (lib.mkIf cfg.banner.enable {
      # The banner names `installer-banner --text` for what does not fit the screen.
      environment.systemPackages = [ cfg.helpers ];
      # Root's autologin shell shows the banner on tty1 and on each serial console, after
      # getty's output, so nothing getty prints scrolls it away; it holds the screen
      # (redrawn when addresses or the onion address change) until Enter or Ctrl-C gives the
      # shell. Serial consoles get no password unless banner.serialPassword is set.
      environment.loginShellInit =
        ''
          case "$(tty)" in
            /dev/tty1) ${banner} ;;
        ''
        + ''
          ${serialTtys}) ${banner}${lib.optionalString (!cfg.banner.serialPassword) " --no-password"} ;;
        ''
        + "esac\n";
    })
  ];
}
