# The kexec installer: a tarball that turns any running Linux into this NixOS installer,
# in RAM, keeping the old system's ssh host keys, authorized keys, machine-id and network.
#
#   system.build.kexecInstallerTarball   directory holding <nixos-images.kexec.tarballName>
#
# The tarball is made by assemble-kexec-tarball (helpers/src/nixos_images/tarball): kernel,
# initrd, kexec-tools, iproute2 and a Python with the launcher, runnable on hosts without
# Python. kexec/run appends the old system's state to the initrd; handoff.sh, run by this
# initrd before switching root, installs it.
{
  config,
  lib,
  pkgs,
  modulesPath,
  ...
}:
let
  cfg = config.nixos-images.kexec;
  helpers = config.nixos-images.helpers;
  python = helpers.python;
  imagesLib = import ../lib.nix;
  system = pkgs.stdenv.hostPlatform.system;
  initrd = "${config.system.build.netbootRamdisk}/initrd";
  # boot.initrd.compressor is a command line or a function of pkgs returning one, and its
  # program may be a full path: "zstd", "xz -9", "''${pkgs.zstd}/bin/zstd -19" -> its name.
  compressorCommand =
    let
      c = config.boot.initrd.compressor;
    in
    if lib.isFunction c then c pkgs else c;
  compressor = baseNameOf (builtins.head (lib.splitString " " compressorCommand));
  zstdInitrd = compressor == "zstd";
  pythonPaths = lib.concatMapStringsSep " " (p: "--python-path ${p}/${python.sitePackages}") (
    [ helpers ] ++ helpers.pythonModules
  );
  inherit (imagesLib) stateDirs;
  handoffArgs = root: "${stateDirs.initrd} ${root} ${stateDirs.installer}";
  # The installer kernel's module tree and the firmware it carries (hardware.firmware may be
  # a list or, after nixpkgs' apply, one buildEnv): kexec/run checks the old host's NICs
  # against the network drivers and firmware listed from them (kexec/drivers.py).
  kernel = config.boot.kernelPackages.kernel;
  kernelModules = "${kernel}/lib/modules/${kernel.modDirVersion}";
  firmwareArgs = lib.concatMapStringsSep " " (p: "--firmware ${p}/lib/firmware") (
    lib.toList config.hardware.firmware
  );
  # The state's file names and modes filled in (helpers/src/nixos_images/data/layout.json).
  handoffScript = imagesLib.renderHandoff (builtins.readFile ./handoff.sh);
in
{
  imports = [
    (modulesPath + "/installer/netboot/netboot-minimal.nix")
    ../installer.nix
  ];

  # nix-community/nixos-images' option, with its meaning and default: flakes that set it
  # (nixos-anywhere's tests, clan) work unchanged.
  options.system.kexec-installer.name = lib.mkOption {
    type = lib.types.strMatching "[A-Za-z0-9._+-]+";
    default = "nixos-kexec-installer";
    example = "nixos-kexec-installer-noninteractive";
    description = ''
      Name prefix of the kexec tarball: the file is <name>-<system>.tar.gz.
    '';
  };

  options.nixos-images.kexec = {
    tarballName = lib.mkOption {
      type = lib.types.strMatching "[A-Za-z0-9._+-]+\\.tar\\.gz";
      default = "${config.system.kexec-installer.name}-${system}.tar.gz";
      defaultText = lib.literalExpression ''"''${config.system.kexec-installer.name}-''${system}.tar.gz"'';
      description = "File name of the tarball in system.build.kexecInstallerTarball.";
    };
    delay = lib.mkOption {
      type = lib.types.ints.unsigned;
      default = imagesLib.kexecDefaults.delay;
      description = ''
        Seconds between loading the installer and booting it, so that whoever ran kexec/run
        can disconnect (nixos-anywhere expects 6). kexec/run --delay overrides it.
      '';
    };
    reserve = lib.mkOption {
      type = lib.types.ints.unsigned;
      default = imagesLib.kexecDefaults.reserve;
      description = ''
        Bytes of RAM the running installer needs beyond its unpacked initrd. kexec/run
        refuses hosts whose MemTotal is below kernel + initrd + unpacked initrd + this.
      '';
    };
  };

  config = {
    assertions = [
      {
        assertion = lib.elem compressor [
          "zstd"
          "gzip"
          "xz"
        ];
        message = ''
          nixos-images.kexec: assemble-kexec-tarball measures gzip, xz and zstd initrds only, but
          boot.initrd.compressor runs "${compressor}": set it to one of them.
        '';
      }
    ];

    # Kexec targets are servers: their network comes back by restore-network, their
    # authorized keys from the old system. A console password is still useful on KVM/IPMI.
    nixos-images.tor.enable = lib.mkDefault false;

    # zstd decompresses several times faster than the default xz for a few percent more
    # size: the installer reads its whole store from this squashfs, in RAM.
    netboot.squashfsCompression = lib.mkDefault "zstd -Xcompression-level 19";

    # The hand-off, before switching root, in whichever stage 1 this system uses.
    boot.initrd.postMountCommands = lib.mkIf (!config.boot.initrd.systemd.enable) ''
      if [ -d ${stateDirs.initrd} ]; then
        sh -s ${handoffArgs "$targetRoot"} <<'NIXOS_IMAGES_HANDOFF'
      ${handoffScript}
      NIXOS_IMAGES_HANDOFF
      fi
    '';
    boot.initrd.systemd = lib.mkIf config.boot.initrd.systemd.enable {
      contents."/etc/nixos-images/handoff.sh".text = handoffScript;
      services.nixos-images-handoff = {
        description = "Install the state kexec/run carried over from the old system";
        wantedBy = [ "initrd.target" ];
        after = [ "initrd-fs.target" ];
        before = [
          "initrd-nixos-activation.service"
          "initrd.target"
        ];
        unitConfig = {
          DefaultDependencies = false;
          ConditionPathExists = stateDirs.initrd;
        };
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "/bin/sh /etc/nixos-images/handoff.sh ${handoffArgs "/sysroot"}";
        };
      };
    };

    system.build.kexecInstallerTarball =
      pkgs.runCommand (lib.removeSuffix ".tar.gz" cfg.tarballName)
        {
          # kmod: modinfo reads the kernel's network drivers (any compression).
          nativeBuildInputs = [
            helpers
            pkgs.kmod
          ]
          ++ lib.optional zstdInitrd pkgs.zstd;
        }
        ''
          mkdir -p $out
          ${lib.optionalString zstdInitrd ''
            # Python 3 before 3.14 has no zstd: measure what the initrd unpacks to here.
            size_args="--initrd-unpacked-size $(zstd -dcq ${initrd} | wc -c)"
          ''}
          assemble-kexec-tarball \
            --out $out/${cfg.tarballName} \
            --kernel ${config.system.build.kernel}/${config.system.boot.loader.kernelFile} \
            --initrd ${initrd} \
            --cmdline ${lib.escapeShellArg "init=${config.system.build.toplevel}/init ${toString config.boot.kernelParams}"} \
            --python ${python}/bin/python3 \
            ${pythonPaths} \
            --tool kexec=${lib.getExe' pkgs.kexec-tools "kexec"} \
            --tool ip=${lib.getExe' pkgs.iproute2 "ip"} \
            --reserve ${toString cfg.reserve} \
            --delay ${toString cfg.delay} \
            --modules ${kernelModules} \
            ${firmwareArgs} \
            ${lib.optionalString config.nixos-images.rootPassword.enable "--console-password"} \
            ''${size_args:-}
        '';
  };
}
