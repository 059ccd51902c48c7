# The helpers (restore-network, root-password, installer-banner, kexec-launcher,
# assemble-kexec-tarball) as one Python application.
{
  lib,
  python3Packages,
  iproute2,
  shadow,
}:
let
  fs = lib.fileset;
in
python3Packages.buildPythonApplication {
  pname = "nixos-images-helpers";
  version = "0.1.0";
  pyproject = true;

  # The package and its tests (tests/ sits beside helpers/, with the hand-off script the
  # QEMU tests run; those need root and QEMU and skip themselves in the build sandbox).
  src = fs.toSource {
    root = ../.;
    fileset = fs.unions [
      ../helpers
      ../tests
      ./kexec/handoff.sh
    ];
  };
  sourceRoot = "source/helpers";

  build-system = [ python3Packages.setuptools ];

  dependencies = [
    python3Packages.typer-slim
    python3Packages.qrcode
  ];

  nativeCheckInputs = [
    python3Packages.pytestCheckHook
    python3Packages.hypothesis
    python3Packages.pyyaml # the workflow checks in tests/test_release.py
  ];
  enabledTestPaths = [ "../tests" ];

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
    # What the bundled launcher imports besides the standard library.
    launcherDependencies = [
      python3Packages.typer-slim
      python3Packages.click
      python3Packages.typing-extensions
    ];
  };

  meta = {
    description = "Helpers inside nixos-images installers: network restore, kexec launcher, root password, login banner";
    license = lib.licenses.mit;
    mainProgram = "restore-network";
    platforms = lib.platforms.linux;
  };
}
