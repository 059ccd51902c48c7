# Every image module evaluated with nixpkgs' real module system (lib.evalModules) against the
# option ledger (ledger.nix), stand-ins for nixpkgs' own modules (core.nix) and profiles
# (modules-path/), and stand-in packages (pkgs.nix). tests/test_nix_modules.py asserts on
# the merged values this returns, as JSON:
#
#   <image>.<system>.<stage 1> = { failedAssertions = [ ... ]; values = { ... }; }
#
# where stage 1 is "systemd" or "scripted" (boot.initrd.systemd.enable = false, as a user
# would set it), and compressors.<name> = the same for the kexec image with a user's
# boot.initrd.compressor. Values are only read when no assertion failed.
{
  libPath ? null,
}:
let
  lib = import ./lib.nix (if libPath == null then { } else { inherit libPath; });
  imagesLib = import ../../nix/lib.nix;
  lean = import ../../nix/lean.nix { inherit lib; };
  leanResults =
    config: unattended: lib.listToAttrs (map (c: lib.nameValuePair c.what c.ok) (lean config unattended));

  kexec = ../../nix/kexec/default.nix;
  netboot = ../../nix/netboot/default.nix;
  iso = ../../nix/image/default.nix;
  noninteractive = ../../nix/kexec/noninteractive.nix;
  # Each image as the flake builds it (a list of modules); noninteractive is a mix-in, so it
  # is also tried next to the other two images, as public flakes combine them.
  images = {
    kexec-installer = [ kexec ];
    noninteractive = [
      kexec
      noninteractive
      # As flake.nix names it (nix/lib.nix kexecInstallerName; equal on both systems).
      { system.kexec-installer.name = imagesLib.kexecInstallerName "x86_64-linux" "kexecNoninteractive"; }
    ];
    netboot-installer = [ netboot ];
    image-installer = [ iso ];
    netboot-noninteractive = [
      netboot
      noninteractive
    ];
    image-noninteractive = [
      iso
      noninteractive
    ];
  };
  stages = {
    systemd = { };
    scripted = {
      boot.initrd.systemd.enable = false;
    };
  };

  evaluate =
    modules: system: extra:
    (lib.evalModules {
      modules = [
        ./ledger.nix
        ./core.nix
        extra
        { _module.args.pkgs = import ./pkgs.nix { inherit lib system; }; }
      ]
      ++ modules;
      specialArgs.modulesPath = ./modules-path;
    }).config;

  # boot.initrd.compressor as users set it: a command, a full path with arguments, a
  # function of pkgs; and one the kexec tarball cannot measure.
  compressors = {
    xz = "xz -9";
    zstdPath = pkgs: "${pkgs.zstd}/bin/zstd -19";
    gzipFunction = _: "gzip";
    lz4 = "lz4 -l";
  };

  unit =
    u:
    lib.filterAttrs (_: v: v != [ ] && v != { } && v != "") {
      inherit (u)
        enable
        wantedBy
        wants
        after
        before
        unitConfig
        serviceConfig
        timerConfig
        ;
    };

  values = config: {
    inherit (config.networking)
      hostName
      useDHCP
      useNetworkd
      ;
    networkmanager = config.networking.networkmanager.enable;
    wireless = config.networking.wireless.enable;
    iwd = config.networking.wireless.iwd.enable;
    autologinUser = config.services.getty.autologinUser;
    variantId = config.system.nixos.variant_id;
    documentation = config.documentation.enable;
    nixosManual = config.documentation.nixos.enable;
    defaultPackages = map (p: p.pname) config.environment.defaultPackages;
    kernelParams = config.boot.kernelParams;
    kernelVersion = config.boot.kernelPackages.kernel.version;
    zfs = config.boot.supportedFilesystems.zfs or false;
    trustedUsers = config.nix.settings.trusted-users;
    resolvedMulticastDNS = config.services.resolved.settings.Resolve.MulticastDNS or null;
    networks = lib.mapAttrs (_: n: n.networkConfig) config.systemd.network.networks;
    networkMatches = lib.mapAttrs (_: n: n.matchConfig) config.systemd.network.networks;
    networkDhcpV4 = lib.mapAttrs (_: n: n.dhcpV4Config) config.systemd.network.networks;
    nixDaemonScheduling = {
      cpu = config.nix.daemonCPUSchedPolicy;
      io = config.nix.daemonIOSchedClass;
      ioPriority = config.nix.daemonIOSchedPriority;
    };
    services = lib.mapAttrs (_: unit) config.systemd.services;
    timers = lib.mapAttrs (_: unit) config.systemd.timers;
    tmpfiles = config.systemd.tmpfiles.rules;
    redistributableFirmware = config.hardware.enableRedistributableFirmware;
    firmware = map (p: {
      inherit (p) name;
      command = p.buildCommand or null;
    }) config.hardware.firmware;
    bashInit = config.programs.bash.interactiveShellInit;
    initrdServices = lib.mapAttrs (_: unit) config.boot.initrd.systemd.services;
    postMountCommands = config.boot.initrd.postMountCommands;
    tor = config.services.tor.enable;
    onionServices = lib.attrNames config.services.tor.relay.onionServices;
    systemPackages = map (p: p.pname) config.environment.systemPackages;
    kernelModules = config.boot.kernelModules;
    supportedFilesystems = lib.attrNames (lib.filterAttrs (_: on: on) config.boot.supportedFilesystems);
    loginShellInit = config.environment.loginShellInit;
    etcOverlay = config.system.etc.overlay.enable;
    systemdStage1 = config.boot.initrd.systemd.enable;
    forbiddenDependencies = config.system.forbiddenDependenciesRegexes;
    sudo = config.security.sudo.enable;
    polkit = config.security.polkit.enable;
    nixSettings = removeAttrs config.nix.settings [ "_module" ];
    # The image outputs: derivation name, store path (computed, so Nix's name rules are
    # checked) and, for runCommand, the build script.
    build = lib.mapAttrs (_: d: {
      inherit (d) name;
      path = d.outPath;
      command = d.buildCommand or null;
      # linkFarm's entries (pkgs.nix keeps them as JSON): the names in the directory.
      files =
        if d ? entries then
          map (e: e.name) (builtins.fromJSON (builtins.unsafeDiscardStringContext d.entries))
        else
          null;
    }) (
      lib.filterAttrs (
        name: _:
        lib.elem name [
          "kexecInstallerTarball"
          "netbootInstaller"
          "netboot"
          "isoImage"
        ]
      ) config.system.build
    );
    isoFileName = config.image.fileName or null;
    # What decides the closure's size (nix/lean.nix's checks, and the values behind them).
    lean = leanResults config false;
    leanUnattended = leanResults config true;
    channel = config.system.installer.channel.enable;
    man = config.documentation.man.enable;
    extraDependencies = map (p: p.pname or p.name) config.system.extraDependencies;
    suForwardXAuth = config.security.pam.services.su.forwardXAuth;
    postBootCommands = config.boot.postBootCommands;
    users = lib.attrNames config.users.users;
    emergencyMode = config.systemd.enableEmergencyMode;
  };

  summary =
    config:
    let
      failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
    in
    {
      failedAssertions = failed;
    }
    // lib.optionalAttrs (failed == [ ]) { values = values config; };
in
{
  assetNames = lib.genAttrs imagesLib.systems imagesLib.assetNames;
  compressors = lib.mapAttrs (
    _: c:
    summary (evaluate images.kexec-installer "x86_64-linux" { boot.initrd.compressor = c; })
  ) compressors;
  # nixosModules.installer alone, for an installer of one's own that imports no installer
  # profile (so no channel option): it must evaluate.
  installerAlone =
    let
      config = evaluate [ ../../nix/installer.nix ] "x86_64-linux" { };
    in
    {
      inherit (config.networking) hostName;
      suForwardXAuth = config.security.pam.services.su.forwardXAuth;
    };
  # An upstream flake's tor-ssh.enable on the kexec image (where Tor is off by default).
  upstreamTorSsh = summary (
    evaluate images.kexec-installer "x86_64-linux" { tor-ssh.enable = true; }
  );
  # An interactive image whose owner wants the dead-man switch from every boot.
  deadmanOn = summary (
    evaluate images.netboot-installer "x86_64-linux" {
      nixos-images.deadman.enable = true;
      nixos-images.deadman.minutes = 12;
    }
  );
  # A user who turns NixOS' DHCP off on the kexec image.
  noDHCP = summary (
    evaluate images.kexec-installer "x86_64-linux" { networking.useDHCP = false; }
  );
  # Without bcachefs, the kernel choice only needs ZFS.
  withoutBcachefs = summary (
    evaluate images.kexec-installer "x86_64-linux" { nixos-images.kernel.bcachefs = false; }
  );
  # What a user of nix-community/nixos-images sets, on our kexec module.
  upstreamName = summary (
    evaluate images.kexec-installer "aarch64-linux" { system.kexec-installer.name = "my-kexec"; }
  );
  images = lib.mapAttrs (
    _: modules:
    lib.genAttrs imagesLib.systems (
      system: lib.mapAttrs (_: stage: summary (evaluate modules system stage)) stages
    )
  ) images;
}
