# nix/lib.nix and nix/lean.nix, tested as Nix with nixpkgs' lib.runTests: the result is the
# list of failed tests (empty when all pass). tests/test_nix.py evaluates it.
{
  libPath ? null,
}:
let
  lib = import ./lib.nix (if libPath == null then { } else { inherit libPath; });
  imagesLib = import ../../nix/lib.nix;
  lean = import ../../nix/lean.nix { inherit lib; };

  # A configuration with just the attributes lean.nix reads.
  leanConfig =
    {
      channel ? false,
      forwardXAuth ? false,
      useDHCP ? true,
      networks ? { },
      man ? false,
      packages ? [ ],
      extraDependencies ? [ ],
    }:
    {
      system.installer.channel.enable = channel;
      security.pam.services.su.forwardXAuth = forwardXAuth;
      networking.useDHCP = useDHCP;
      systemd.network.networks = networks;
      documentation = {
        enable = false;
        nixos.enable = false;
        man.enable = man;
      };
      environment.systemPackages = packages;
      environment.ldso32 = null;
      system.extraDependencies = extraDependencies;
      nix.registry = { };
      programs.nano.enable = false;
      security.sudo.enable = false;
      security.polkit.enable = false;
      services.dbus.implementation = "broker";
    };
  failed = config: unattended: map (c: c.what) (lib.filter (c: !c.ok) (lean config unattended));
in
lib.runTests {
  testAssetNamesFillInTheSystemAndKernelFile = {
    expr = {
      inherit ((imagesLib.assetNames "aarch64-linux")) kernel ipxe;
    };
    expected = {
      kernel = "Image-aarch64-linux";
      ipxe = "netboot-aarch64-linux.ipxe";
    };
  };
  testKexecInstallerNameIsTheAssetLessItsSuffix = {
    expr = imagesLib.kexecInstallerName "x86_64-linux" "kexecNoninteractive";
    expected = "nixos-kexec-installer-noninteractive";
  };
  testKexecDefaultsAreInBytes = {
    expr = imagesLib.kexecDefaults;
    expected = {
      delay = 6;
      reserve = 268435456;
    };
  };
  testRenderHandoffFillsInNamesAndModes = {
    expr = imagesLib.renderHandoff "@hostKeys@ @hostKeysMode@ @hostKeysPublicMode@ @machineIdMode@ @other@";
    expected = "ssh/host-keys 0600 0644 0444 @other@";
  };
  testSerialConsolesEndWithTheOneThatBecomesDevConsole = {
    expr = map imagesLib.serialConsoles [
      "x86_64-linux"
      "aarch64-linux"
    ];
    expected = [
      [ "ttyS0" ]
      [
        "ttyAMA0"
        "ttyS0"
      ]
    ];
  };
  testNewestKernelSkipsBrokenMissingAndFailingSets = {
    expr =
      let
        set = version: broken: {
          kernel.version = version;
          zfs.meta.broken = broken;
        };
      in
      (imagesLib.newestKernel { zfs = imagesLib.moduleAttrWorks "zfs"; } {
        linux_6_6 = set "6.6.60" false;
        linux_6_12 = set "6.12.9" false;
        linux_6_16 = set "6.16.1" true;
        linux_6_13 = {
          kernel.version = "6.13.1";
        };
        linux_6_9 = throw "removed";
        linux_latest = set "6.17.0" false;
      }).kernel.version;
    expected = "6.12.9";
  };
  testModuleAttrWorksNeedsTheAttributeUnbroken = {
    expr = map (imagesLib.moduleAttrWorks "zfs") [
      { zfs.meta.broken = false; }
      { zfs.meta.broken = true; }
      { }
    ];
    expected = [
      true
      false
      false
    ];
  };
  testALeanInteractiveImagePasses = {
    expr = failed (leanConfig { man = true; }) false;
    expected = [ ];
  };
  testAChannelAndXauthAreCaught = {
    expr = failed (leanConfig {
      channel = true;
      forwardXAuth = true;
    }) false;
    expected = [
      "no nixpkgs channel (a copy of nixpkgs' source, nix-env at boot)"
      "su without X authority forwarding (xauth, X11 libraries)"
    ];
  };
  testDhcpNetworksWithoutUseDhcpAreCaught = {
    expr = failed (leanConfig {
      useDHCP = false;
      networks."99-ethernet-default-dhcp" = { };
    }) false;
    expected = [ "the default DHCP networks only with networking.useDHCP" ];
  };
  testManDbAndExtraDependenciesAreCaughtUnattendedOnly = {
    expr =
      let
        config = leanConfig {
          man = true;
          packages = [ { pname = "man-db"; } ];
          extraDependencies = [ { name = "stdenv"; } ];
        };
      in
      {
        interactive = failed config false;
        unattended = failed config true;
      };
    expected = {
      interactive = [ ];
      unattended = [
        "no man pages (man-db)"
        "no extra dependencies (stdenv, busybox, jq kept for offline builds)"
      ];
    };
  };
}
