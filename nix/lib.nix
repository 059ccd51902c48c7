# Pure helpers shared by the flake and the modules. Only builtins, no nixpkgs: CI evaluates
# them with Debian's nix-instantiate (tests/test_nix.py), where nixpkgs cannot be fetched.
let
  # The one owner of the facts Nix shares with the helpers and the workflows.
  layout = builtins.fromJSON (builtins.readFile ../helpers/src/nixos_images/data/layout.json);
in
rec {
  inherit (layout) systems;

  # The kernel image format kexec and boot loaders take on each architecture.
  kernelFile = system: layout.kernelFiles.${system};

  # The serial ports rented servers and VMs expose; on aarch64 both PL011 (ttyAMA0: QEMU,
  # boards) and 8250 (ttyS0: AWS Graviton), the latter last, so it becomes /dev/console.
  serialConsoles = system: if system == "aarch64-linux" then [ "ttyAMA0" "ttyS0" ] else [ "ttyS0" ];

  # Release asset names by key (stable across releases: nixos-anywhere downloads them by
  # URL): kexec, kexecNoninteractive, iso, kernel, initrd, ipxe.
  assetNames =
    system:
    let
      fill = builtins.replaceStrings [ "{system}" "{kernelFile}" ] [ system (kernelFile system) ];
    in
    builtins.listToAttrs (
      map (asset: {
        name = asset.key;
        value = fill asset.name;
      }) layout.assets
    );

  # system.kexec-installer.name for a kexec tarball asset (key kexec or kexecNoninteractive):
  # the asset's name without "-<system>.tar.gz".
  kexecInstallerName =
    system: key:
    let
      file = (assetNames system).${key};
      suffix = "-${system}.tar.gz";
    in
    builtins.substring 0 (builtins.stringLength file - builtins.stringLength suffix) file;

  # Where kexec/run puts the old system's state in the installer's initrd, and where the
  # hand-off moves it for the installer's units.
  inherit (layout) stateDirs;

  # The tarball's defaults: seconds from loading to booting, and the RAM (bytes) the running
  # installer needs beyond its initrd (nixos-images.kexec.delay, .reserve).
  kexecDefaults = {
    inherit (layout.kexec) delay;
    reserve = layout.kexec.reserveMiB * 1024 * 1024;
  };

  # The Tor onion service for ssh: its name (the directory Tor writes its hostname file in)
  # and that file, which the banner reads; and where root-password saves the password.
  inherit (layout) onion rootPasswordFile networkModule deadman;

  # handoff.sh with its @name@ placeholders filled in from layout.json's stateFiles: each
  # file's path in the state directory (@hostKeys@, ...) and its mode (@hostKeysMode@, and
  # @hostKeysPublicMode@ for a host key's .pub).
  renderHandoff =
    text:
    let
      files = layout.stateFiles;
      pairs = builtins.concatLists (
        map (
          name:
          let
            f = files.${name};
          in
          [
            {
              token = "@${name}@";
              value = f.path;
            }
            {
              token = "@${name}Mode@";
              value = f.mode;
            }
          ]
          ++ (
            if f ? publicMode then
              [
                {
                  token = "@${name}PublicMode@";
                  value = f.publicMode;
                }
              ]
            else
              [ ]
          )
        ) (builtins.attrNames files)
      );
    in
    builtins.replaceStrings (map (p: p.token) pairs) (map (p: p.value) pairs) text;

  # The newest kernel package set in `kernelSets` (pkgs.linuxKernel.packages) for which every
  # check (name -> set -> bool: "its ZFS module is not broken") holds. Only versioned sets
  # (linux_6_12, ...) count: aliases like linux_latest would pick a kernel an out-of-tree
  # module does not support yet. Sets, and checks, that fail to evaluate are skipped.
  newestKernel =
    checks: kernelSets:
    let
      isVersioned = name: builtins.match "linux_[0-9]+_[0-9]+" name != null;
      versioned = builtins.filter isVersioned (builtins.attrNames kernelSets);
      passes =
        set: check:
        let
          ok = builtins.tryEval (check set);
        in
        ok.success && ok.value;
      usable =
        name:
        let
          set = builtins.tryEval kernelSets.${name};
        in
        set.success && builtins.all (passes set.value) (builtins.attrValues checks);
      candidates = map (name: kernelSets.${name}) (builtins.filter usable versioned);
      newer =
        a: b: if builtins.compareVersions a.kernel.version b.kernel.version >= 0 then a else b;
    in
    if candidates == [ ] then
      throw "nixos-images: no kernel in linuxKernel.packages has working ${builtins.concatStringsSep " and " (builtins.attrNames checks)} modules; set boot.kernelPackages yourself"
    else
      builtins.foldl' newer (builtins.head candidates) (builtins.tail candidates);

  # A check for newestKernel: the set has attribute `attr` and it is not marked broken.
  moduleAttrWorks = attr: set: set ? ${attr} && !(set.${attr}.meta.broken or false);
}
