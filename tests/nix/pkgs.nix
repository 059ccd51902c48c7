# Stand-ins for the nixpkgs packages and builders the modules use, for evaluating them
# without nixpkgs (tests/nix/eval.nix). Every builder goes through builtins.derivation, so
# nixpkgs' store-path name rules apply: `runCommand "a b"` fails here as it does there.
# Nothing is ever built.
{ lib, system }:
let
  derivation =
    name: attrs:
    builtins.derivation (
      {
        inherit name system;
        builder = "/bin/sh";
      }
      // attrs
    );

  # A package: a derivation with a pname, a version and meta, like nixpkgs' packages.
  package =
    pname: extra:
    derivation pname { }
    // {
      inherit pname;
      version = "0";
      meta = { };
    }
    // extra;

  # A Python package whose overridePythonAttrs sees and replaces its attributes, as
  # buildPythonPackage's does (pkgs/development/interpreters/python/python-packages-base.nix).
  pythonPackage =
    pname: attrs:
    package pname attrs
    // {
      pythonModule = python;
      overridePythonAttrs =
        f: pythonPackage pname (attrs // (if lib.isFunction f then f attrs else f));
    };

  python = package "python3" {
    sitePackages = "lib/python3.13/site-packages";
  };

  # At both pins typer 0.25.1 declares click, shellingham, rich and annotated-doc
  # (helpers/versions.toml); its default.nix lists them as `dependencies`.
  typerDependencies = map (name: pythonPackage name { }) [
    "click"
    "shellingham"
    "rich"
    "annotated-doc"
  ];

  python3Packages = lib.genAttrs [ "qrcode" "setuptools" "pytestCheckHook" "pytest-timeout" "hypothesis" "pyyaml" ] (
    name: pythonPackage name { }
  )
  // {
    inherit python;
    typer = pythonPackage "typer" { dependencies = typerDependencies; };
    # python-packages-base.nix: the interpreter, the packages and what they propagate.
    requiredPythonModules =
      drvs: lib.unique ([ python ] ++ drvs ++ lib.concatMap (d: d.dependencies or [ ]) drvs);
    buildPythonApplication =
      args:
      package "${args.pname}-${args.version}" (
        args.passthru
        // {
          inherit (args) pname version meta;
        }
      );
  };

  kernel =
    version:
    derivation "linux-${version}" { }
    // {
      inherit version;
      modDirVersion = version;
    };
  kernelWithout = module: version: kernel version // { "${module}Broken" = true; };
  # A kernel package set: the kernel, out-of-tree modules, and its callPackage.
  kernelSet = kernelSetOf kernel;
  kernelSetOf =
    mkKernel: version: modules:
    let
      set = {
        kernel = mkKernel version;
        callPackage = lib.callPackageWith set;
      }
      // modules;
    in
    set;

  pkgs = {
    inherit lib python3Packages;
    stdenv = package "stdenv" { hostPlatform.system = system; };
    callPackage = lib.callPackageWith pkgs;

    runCommand =
      name: env: buildCommand:
      derivation name ((removeAttrs env [ "passthru" ]) // { inherit buildCommand; });
    writeText = name: text: derivation name { inherit text; };
    writeShellScriptBin = name: text: derivation name { inherit text; } // { pname = name; };
    linkFarm =
      name: entries:
      derivation name {
        entries = builtins.toJSON entries;
      };

    kexec-tools = package "kexec-tools" { };
    iproute2 = package "iproute2" { };
    shadow = package "shadow" { };
    zstd = package "zstd" { };
    kmod = package "kmod" { };
    systemd = package "systemd" { };
  }
  // lib.genAttrs [
    "rsync"
    "git"
    "man-db"
    "busybox"
    "makeInitrdNGTool"
    "channelSources"
    "disko"
    "nixos-facter"
    "nixos-install-tools"
    "parted"
    "gptfdisk"
    "e2fsprogs"
    "linux-firmware"
  ] (name: package name { })
  // {
    # jq's outputs (bin, dev, man, ...): installation-device lists them all.
    jq = package "jq" { all = [ (package "jq-bin" { }) ]; };
    stdenvNoCC = package "stdenv" { };
    # tasks/filesystems/zfs.nix reads kernelModuleAttribute from the zfs package.
    zfs = package "zfs" { kernelModuleAttribute = "zfs_2_3"; };
    # bcachefs' kernel module, built with a kernel set's callPackage: broken where the
    # stand-in kernel says so.
    bcachefs-tools = package "bcachefs-tools" {
      kernelModule =
        { kernel }:
        package "bcachefs-kernel-module" { meta.broken = kernel.bcachefsBroken or false; };
    };

    # pkgs.linuxKernel.packages: versioned sets, an alias, one whose ZFS is broken, one
    # without ZFS, one whose bcachefs is broken, one that throws. nix/lib.nix's newestKernel
    # must pick linux_6_12 (linux_6_14 without bcachefs).
    linuxKernel.packages = {
      linux_6_6 = kernelSet "6.6.90" { zfs_2_3 = package "zfs-kernel" { }; };
      linux_6_12 = kernelSet "6.12.40" { zfs_2_3 = package "zfs-kernel" { }; };
      linux_6_14 = kernelSetOf (kernelWithout "bcachefs") "6.14.3" {
        zfs_2_3 = package "zfs-kernel" { };
      };
      linux_6_15 = kernelSet "6.15.2" { zfs_2_3 = package "zfs-kernel" { meta.broken = true; }; };
      linux_6_16 = kernelSet "6.16.1" { };
      linux_6_17 = throw "linux_6_17 was removed";
      linux_latest = kernelSet "6.16.1" { zfs_2_3 = package "zfs-kernel" { }; };
    };
  };
in
pkgs
