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

  # The first serial port's device name: the console rented servers and VMs expose.
  serialConsole = system: if system == "aarch64-linux" then "ttyAMA0" else "ttyS0";

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

  # Where kexec/run puts the old system's state in the installer's initrd, and where the
  # hand-off moves it for the installer's units.
  inherit (layout) stateDirs;

  # The newest kernel package set in `kernelSets` (pkgs.linuxKernel.packages) whose ZFS
  # module (attribute `zfsAttr`, from config.boot.zfs.package.kernelModuleAttribute) is not
  # marked broken. Only versioned sets (linux_6_12, ...) count: aliases like linux_latest
  # would pick a kernel ZFS does not support yet. Sets that fail to evaluate are skipped.
  newestZfsKernel =
    zfsAttr: kernelSets:
    let
      isVersioned = name: builtins.match "linux_[0-9]+_[0-9]+" name != null;
      versioned = builtins.filter isVersioned (builtins.attrNames kernelSets);
      usable =
        name:
        let
          set = kernelSets.${name};
          ok = builtins.tryEval (set ? ${zfsAttr} && !(set.${zfsAttr}.meta.broken or false));
        in
        ok.success && ok.value;
      candidates = map (name: kernelSets.${name}) (builtins.filter usable versioned);
      newer =
        a: b: if builtins.compareVersions a.kernel.version b.kernel.version >= 0 then a else b;
    in
    if candidates == [ ] then
      throw "nixos-images: no kernel in linuxKernel.packages has a working ${zfsAttr} module; set boot.kernelPackages yourself"
    else
      builtins.foldl' newer (builtins.head candidates) (builtins.tail candidates);
}
