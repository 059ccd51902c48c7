# The helpers (restore-network, root-password, installer-banner, kexec-launcher,
# assemble-kexec-tarball, nixos-images-release) as one Python application.
{
  lib,
  python3Packages,
  iproute2,
  shadow,
  zstd,
}:
let
  fs = lib.fileset;

  # nixpkgs' typer without rich: every helper is built with rich_markup_mode=None
  # (helpers/src/nixos_images/cli.py), so rich is never loaded, and it would add ~13 MB to
  # every image. pydantic stays where typer has it: typer 0.29 parses every option through
  # it. typer's own tests are not run: nixpkgs' 0.27.1 update "unbreaks typer" (#556212), so
  # they may fail at a pin; tests/test_cli.py covers what the helpers use, on each typer
  # helpers/versions.toml lists.
  unwanted = [ "rich" ];
  typer = python3Packages.typer.overridePythonAttrs (old: {
    dependencies = lib.filter (d: !(lib.elem (d.pname or "") unwanted)) old.dependencies;
    pythonRemoveDeps = unwanted;
    doCheck = false;
  });
  dependencies = [
    typer
    python3Packages.qrcode
  ];

  # The package and its tests (tests/ sits beside helpers/, with the hand-off script the
  # QEMU tests run; those need root and QEMU and skip themselves in the build sandbox).
  # tests/sandbox-check runs the tests from exactly these files, as the check phase will.
  sourceFiles = fs.unions [
    ../helpers
    ../tests
    ./kexec/handoff.sh
  ];
in
python3Packages.buildPythonApplication {
  pname = "nixos-images-helpers";
  version = "0.1.0";
  pyproject = true;

  src = fs.toSource {
    root = ../.;
    fileset = sourceFiles;
  };
  sourceRoot = "source/helpers";

  build-system = [ python3Packages.setuptools ];

  inherit dependencies;

  nativeCheckInputs = [
    iproute2 # the banner and restore-network tests read the network with `ip`
    python3Packages.pytestCheckHook
    python3Packages.pytest-timeout
    python3Packages.hypothesis
    python3Packages.pyyaml # the workflow checks in tests/test_release.py
    zstd # tests/test_release.py compresses a stand-in netboot initrd as NixOS does
  ];
  enabledTestPaths = [ "../tests" ];
  # The same examples every build (tests/conftest.py): a property test must not fail one
  # build in N by drawing a new seed; CI explores with fresh seeds instead.
  env.HYPOTHESIS_PROFILE = "derandomized";

  # restore-network and installer-banner read the network with `ip`; root-password sets
  # the password with chpasswd.
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      iproute2
      shadow
    ])
  ];

  pythonImportsCheck = [
    "nixos_images.restore_network"
    "nixos_images.kexec.launcher"
    "nixos_images.tarball.assemble"
  ];

  passthru = {
    # The interpreter the helpers are built for: the kexec tarball bundles this one.
    python = python3Packages.python;
    inherit typer sourceFiles;
    # Where the helpers' dependencies are: the kexec tarball's build traces which of their
    # modules the launcher loads (helpers/src/nixos_images/tarball/trace.py).
    pythonModules = lib.remove python3Packages.python (
      python3Packages.requiredPythonModules dependencies
    );
  };

  meta = {
    description = "Helpers inside nixos-images installers: network restore, kexec launcher, root password, login banner";
    license = lib.licenses.mit;
    mainProgram = "restore-network";
    platforms = lib.platforms.linux;
  };
}
