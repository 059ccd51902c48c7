# The ledger: every NixOS option our modules set or read (and the profile stubs in
# modules-path/ set), declared with the type nixpkgs gives it, so that lib.evalModules checks
# our definitions as nixpkgs would. Options nixpkgs declares in a profile's own file
# (netboot.nix, iso-image.nix, image/file-options.nix) are declared in that file's stub.
#
# Each entry names the nixpkgs file it was read from, as path@revision where the revision of
# the copy read is known, or by the pull request that made what it says ("facts" refers to
# the project's checked list of nixpkgs facts, each placed by its pull request's merge date).
# A copy read may predate the pins (2026-06-23 unstable, 2026-08-19 nixos-26.05); where a
# later pull request changed an option, it is named.
#
# Deliberately no freeform catch-all at the root: an option that is not declared here is
# an error, as it would be against nixpkgs. Options nixpkgs types as freeform stay freeform.
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;
  option = type: default: mkOption { inherit type default; };
  bool = default: option types.bool default;
  strings = option (types.listOf types.str) [ ];

  # lib/systemd-unit-options.nix: a unit's options (not freeform: an unknown one is an
  # error). unitConfig/serviceConfig/timerConfig are attrsOf unitOption, which accepts
  # scalars and lists of them; `anything` stands in for unitOption.
  unitOption = option (types.attrsOf types.anything) { };
  unit = types.submodule {
    options = {
      enable = bool true;
      description = option types.singleLineStr "";
      wantedBy = strings;
      requiredBy = strings;
      wants = strings;
      requires = strings;
      after = strings;
      before = strings;
      path = option (types.listOf (types.oneOf [
        types.package
        types.str
      ])) [ ];
      script = option types.lines "";
      unitConfig = unitOption;
      serviceConfig = unitOption;
      timerConfig = unitOption;
    };
  };
  # system/boot/systemd/initrd.nix: boot.initrd.systemd.contents entries.
  initrdContent = types.submodule (
    { name, ... }:
    {
      options = {
        enable = bool true;
        target = option types.str name;
        source = option types.path null;
        text = option (types.nullOr types.lines) null;
      };
    }
  );
  # system/boot/networkd.nix: the parts of .network and .netdev units used here (not freeform),
  # with nixpkgs' checks (networkd.nix `check.network.section*`, systemd-lib.nix assert*) on
  # the keys restore-network's module writes; a key nixpkgs does not know there, or a value
  # its check refuses, fails the evaluation as it would in nixpkgs. Read in the networkd.nix
  # that has mobileNetworkConfig (2026-03 or later); list elements are flat attribute sets
  # since NixOS/nixpkgs#312472 (2024), their old *Config nesting deprecated.
  boolValues = [
    true
    false
    "yes"
    "no"
  ];
  oneOf = values: v: builtins.elem v values;
  isInt = builtins.isInt;
  byteFormat = v: isInt v || builtins.match "[0-9]+[KMGT]?" v != null;
  # section: { key = check; }: only these keys, each value (or list element) passing its check.
  # As systemd-lib.nix checkUnitConfig, a check sees each definition with mkOverride's and
  # mkIf's wrapper taken off.
  unwrapped = v: if builtins.elem (v._type or "") [ "override" "if" ] then v.content else v;
  checked =
    name: keys:
    types.addCheck (types.attrsOf types.anything) (
      attrs:
      lib.all (
        key:
        keys ? ${key}
        && lib.all keys.${key} (lib.toList (unwrapped attrs.${key}))
        || builtins.trace "${name}: ${key} = ${builtins.toJSON attrs.${key}} is refused" false
      ) (builtins.attrNames attrs)
    );
  any = _: true;
  section = name: keys: option (checked name keys) { };
  sections = name: keys: option (types.listOf (checked name keys)) [ ];
  network = types.submodule {
    options = {
      matchConfig = unitOption; # no check in nixpkgs
      DHCP = option (types.nullOr types.str) null;
      linkConfig = section "Link" {
        MTUBytes = byteFormat;
        RequiredForOnline = v: oneOf boolValues v || builtins.isString v;
        Unmanaged = oneOf boolValues;
      };
      networkConfig = section "Network" {
        DHCP = oneOf (boolValues ++ [
          "ipv4"
          "ipv6"
        ]);
        IPv6AcceptRA = oneOf boolValues;
        LinkLocalAddressing = oneOf (boolValues ++ [
          "ipv4"
          "ipv6"
        ]);
        MulticastDNS = oneOf (boolValues ++ [ "resolve" ]);
        IPv6PrivacyExtensions = any; # nixpkgs' own catch-all network sets it
        LLDP = oneOf (boolValues ++ [ "routers-only" ]);
        EmitLLDP = oneOf (boolValues ++ [
          "nearest-bridge"
          "non-tpmr-bridge"
          "customer-bridge"
        ]);
        Bond = any;
        Bridge = any;
        VLAN = any;
        DNS = any;
        Domains = any;
      };
      addresses = sections "Address" {
        Address = any;
        Peer = any;
        AddPrefixRoute = oneOf boolValues;
      };
      routes = sections "Route" {
        Destination = any;
        Table = any;
        Type = oneOf [
          "unicast"
          "local"
          "broadcast"
          "anycast"
          "multicast"
          "blackhole"
          "unreachable"
          "prohibit"
          "throw"
          "nat"
          "xresolve"
        ];
        Gateway = any;
        GatewayOnLink = oneOf boolValues;
        Metric = isInt;
        Scope = oneOf [
          "global"
          "site"
          "link"
          "host"
          "nowhere"
        ];
        PreferredSource = any;
        MTUBytes = byteFormat;
      };
      routingPolicyRules = sections "RoutingPolicyRule" {
        Priority = isInt;
        Table = any;
        From = any;
        To = any;
        Family = oneOf [
          "ipv4"
          "ipv6"
          "both"
        ];
        InvertRule = oneOf boolValues;
        IncomingInterface = any;
        OutgoingInterface = any;
      };
      dhcpV4Config = section "DHCPv4" {
        RequestAddress = any;
        ClientIdentifier = oneOf [
          "mac"
          "duid"
        ];
        IAID = isInt;
        DUIDType = any;
        DUIDRawData = any;
        UseHostname = oneOf boolValues;
      };
    };
  };
  netdev = types.submodule {
    options = {
      # No default in nixpkgs: every netdev sets it; Name and Kind are required.
      netdevConfig = mkOption {
        type = types.addCheck (checked "NetDev" {
          Name = any;
          Kind = any;
          MACAddress = v: v == "none" || builtins.match "([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}" v != null;
        }) (attrs: attrs ? Name && attrs ? Kind);
      };
      bondConfig = section "Bond" {
        Mode = oneOf [
          "balance-rr"
          "active-backup"
          "balance-xor"
          "broadcast"
          "802.3ad"
          "balance-tlb"
          "balance-alb"
        ];
        TransmitHashPolicy = oneOf [
          "layer2"
          "layer3+4"
          "layer2+3"
          "encap2+3"
          "encap3+4"
        ];
        LACPTransmitRate = oneOf [
          "slow"
          "fast"
        ];
        AdSelect = oneOf [
          "stable"
          "bandwidth"
          "count"
        ];
        MIIMonitorSec = any;
        UpDelaySec = any;
        DownDelaySec = any;
        MinLinks = v: isInt v && v >= 0;
      };
      bridgeConfig = section "Bridge" {
        STP = oneOf boolValues;
        VLANFiltering = oneOf boolValues;
      };
      vlanConfig = section "VLAN" {
        Id = v: isInt v && v >= 0 && v <= 4094;
        Protocol = oneOf [
          "802.1q"
          "802.1ad"
        ];
      };
    };
  };
  # Options whose nixpkgs type is a freeform submodule (nix.settings, openssh.settings,
  # resolved.settings): the named options are those whose merge matters here.
  freeform =
    options:
    types.submodule {
      freeformType = types.attrsOf types.anything;
      inherit options;
    };
in
{
  options = {
    # misc/assertions.nix
    assertions = option (types.listOf types.unspecified) [ ];
    warnings = option (types.listOf types.str) [ ];

    boot = {
      # system/boot/kernel.nix (the kernelParam type as nixpkgs has had it since 2023: words,
      # with spaces only inside double quotes); kernelPackages is `raw` in nixpkgs.
      kernelParams = option (types.listOf (
        types.strMatching ''([^"[:space:]]|"[^"]*")+''
        // {
          name = "kernelParam";
          description = "string, with spaces inside double quotes";
        }
      )) [ ];
      # system/boot/stage-2.nix: shell commands run at the end of boot (channel.nix's nix-env).
      postBootCommands = option types.lines "";
      kernelModules = strings;
      # tasks/filesystems/bcachefs.nix: the tools package carries the kernel module's
      # expression, built with the kernel set's callPackage (#446975, merged 2025-09-28).
      bcachefs.package = option types.package pkgs.bcachefs-tools;
      # system/boot/loader/grub/grub.nix (perlless turns it off)
      loader.grub.enable = bool true;
      kernelPackages = option types.raw null;
      # tasks/filesystems.nix: attrsOf bool, a list of names coerced to it (since 23.11).
      supportedFilesystems = option (types.coercedTo (types.listOf types.str) (
        names: lib.genAttrs names (_: true)
      ) (types.attrsOf types.bool)) { };
      # tasks/filesystems/zfs.nix: zfs.package is pkgs.zfs, whose passthru names the
      # attribute of its kernel module in a kernel package set (kernelModuleAttribute).
      zfs.package = option types.package pkgs.zfs;
      initrd = {
        # system/boot/stage-1.nix: either str (functionTo str) (NixOS/nixpkgs#97145),
        # zstd for kernels >= 5.9; postMountCommands is lines (scripted stage 1 only).
        compressor = option (types.either types.str (types.functionTo types.str)) "zstd";
        postMountCommands = option types.lines "";
        systemd = {
          # system/boot/systemd/initrd.nix; on by default at both pins (NixOS/nixpkgs#435781).
          enable = bool true;
          contents = option (types.attrsOf initrdContent) { };
          services = option (types.attrsOf unit) { };
        };
      };
    };

    networking = {
      # tasks/network-interfaces.nix (useNetworkd).
      hostName = option (types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$") "nixos";
      hostId = option (types.nullOr (types.strMatching "[0-9a-f]{8}")) null;
      useDHCP = bool true;
      useNetworkd = bool false;
      # services/networking/firewall.nix
      firewall.allowedUDPPorts = option (types.listOf types.port) [ ];
      # services/networking/networkmanager.nix (@01b03551)
      networkmanager.enable = bool false;
      # services/networking/wpa_supplicant.nix and iwd.nix
      wireless.enable = bool false;
      wireless.iwd.enable = bool false;
    };

    services = {
      # services/networking/ssh/sshd.nix: settings is a freeform submodule.
      openssh.enable = bool false;
      openssh.settings = option (freeform {
        PermitRootLogin = option (types.enum [
          "yes"
          "without-password"
          "prohibit-password"
          "forced-commands-only"
          "no"
        ]) "prohibit-password";
      }) { };
      # system/boot/resolved.nix@00fad191: settings (freeform), extraConfig removed, since
      # NixOS/nixpkgs#416720 (26.05).
      resolved.enable = bool false;
      resolved.settings = option (freeform { }) { };
      # services/security/tor.nix: onion services by name, each
      # mapping ports (a port or { port, target }).
      tor.enable = bool false;
      tor.relay.onionServices = option (types.attrsOf (
        types.submodule {
          options.map = option (types.listOf (types.either types.port types.attrs)) [ ];
        }
      )) { };
      # services/ttys/getty.nix (@087472b1)
      getty.autologinUser = option (types.nullOr types.str) null;
      getty.helpLine = option types.lines "";
    };

    systemd = {
      # system/boot/systemd.nix
      package = option types.package pkgs.systemd;
      services = option (types.attrsOf unit) { };
      timers = option (types.attrsOf unit) { };
      # system/boot/systemd/tmpfiles.nix
      tmpfiles.rules = option (types.listOf types.str) [ ];
      # system/boot/emergency-mode.nix@7b6b6045: stage 2's emergency shell.
      enableEmergencyMode = bool true;
      # system/boot/networkd.nix
      network.enable = bool false;
      network.networks = option (types.attrsOf network) { };
      network.netdevs = option (types.attrsOf netdev) { };
    };

    # services/system/nix-daemon.nix: nix.settings is freeform; list settings concatenate.
    # services/system/nix-daemon.nix: the daemon's scheduling (enums and an int).
    nix.daemonCPUSchedPolicy = option (types.enum [
      "other"
      "batch"
      "idle"
    ]) "other";
    nix.daemonIOSchedClass = option (types.enum [
      "best-effort"
      "idle"
    ]) "best-effort";
    nix.daemonIOSchedPriority = option types.int 4;
    nix.settings = option (freeform {
      trusted-users = strings;
      experimental-features = strings;
    }) { };

    # installer/cd-dvd/channel.nix (declared by its stub, which installation-device imports).
    # hardware/all-firmware.nix
    hardware.enableRedistributableFirmware = bool false;
    # hardware/all-firmware.nix (system/boot/kernel.nix adds the kernel's own): packages with
    # lib/firmware; nixpkgs' apply joins them into one buildEnv (kexec/default.nix takes either).
    hardware.firmware = option (types.listOf types.package) [ ];
    # programs/git.nix
    programs.git.enable = bool false;
    # config/users-groups.nix: the parts of a user the profiles set.
    users.users = option (types.attrsOf (types.submodule {
      options = {
        isNormalUser = bool false;
        extraGroups = strings;
        initialHashedPassword = option (types.nullOr types.str) null;
        openssh.authorizedKeys.keys = strings;
      };
    })) { };
    # security/pam.nix: per-service settings; forwardXAuth defaults to false there, and
    # programs/shadow.nix turns it on for su (pam_xauth, with xauth in the closure).
    security.pam.services = option (types.attrsOf (types.submodule {
      options = {
        rootOK = bool false;
        forwardXAuth = bool false;
        logFailures = bool false;
      };
    })) { };

    # misc/documentation.nix
    documentation.enable = bool true;
    documentation.nixos.enable = bool true;
    documentation.man.enable = bool true;
    documentation.info.enable = bool true;

    # config/system-path.nix (@c6ea188f)
    environment.defaultPackages = option (types.listOf types.package) [ ];
    environment.systemPackages = option (types.listOf types.package) [ ];
    # config/shells-environment.nix
    environment.loginShellInit = option types.lines "";
    # config/ldso.nix: null leaves the 32-bit loader stub out.
    environment.ldso32 = option (types.nullOr types.package) null;

    # nix.registry (config/nix-flakes.nix): attrsOf submodule; only emptied here.
    nix.registry = option (types.attrsOf types.attrs) { };
    # programs/bash/bash.nix: shell init of interactive shells (lines).
    programs.bash.interactiveShellInit = option types.lines "";
    # programs/nano.nix, programs/less.nix
    programs.nano.enable = bool true;
    programs.less.lessopen = option (types.nullOr types.str) null;
    # security/sudo.nix, security/polkit.nix
    security.sudo.enable = bool true;
    security.polkit.enable = bool false;
    # services/system/dbus.nix
    services.dbus.implementation = option (types.enum [
      "dbus"
      "broker"
    ]) "dbus";
    # services/system/userborn.nix
    services.userborn.enable = bool false;

    system = {
      # misc/version.nix (@03a362fe; variant_id from NixOS/nixpkgs#209064)
      stateVersion = option types.str "26.05";
      nixos.release = mkOption {
        type = types.str;
        default = "26.05";
        readOnly = true;
      };
      nixos.label = option types.str "26.05";
      nixos.variant_id = option (types.nullOr (types.strMatching "^[a-z0-9._-]+$")) null;
      # system/activation/top-level.nix: system.build is freeform, lazyAttrsOf (uniq unspecified).
      build = option (types.submoduleWith {
        modules = [ { freeformType = types.lazyAttrsOf (types.uniq types.unspecified); } ];
      }) { };
      # system/boot/loader/loader.nix
      boot.loader.kernelFile = option types.str null;
      # system/activation/top-level.nix: what the closure may not contain, and the paths it
      # must contain besides.
      forbiddenDependenciesRegexes = strings;
      extraDependencies = option (types.listOf types.package) [ ];
      # system/etc/etc.nix: /etc as an overlay (etc-activation.nix asserts systemd stage 1).
      etc.overlay.enable = bool false;
      # installer/tools/tools.nix
      tools.nixos-generate-config.enable = bool true;
    };
  };
}
