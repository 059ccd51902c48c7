# What nix/package.nix declares, evaluated with the real lib and stand-ins for nixpkgs'
# packages: the files of its source, where the build starts, and what its check phase has.
# tests/sandbox-check runs the package's tests from exactly these (one owner: package.nix).
{
  libPath ? null,
}:
let
  lib = import ./lib.nix (if libPath == null then { } else { inherit libPath; });
  repo = toString ../..;

  # A package stand-in: a name, and whether it is a Python module (on PYTHONPATH) or a
  # program (on PATH) in the check phase.
  package = pythonModule: pname: {
    inherit pname pythonModule;
    overridePythonAttrs = _: package pythonModule pname;
  };
  python3Packages = lib.genAttrs [
    "hypothesis"
    "pytest-timeout"
    "pytestCheckHook"
    "pyyaml"
    "qrcode"
    "setuptools"
    "typer"
  ] (package true)
  // {
    python = package true "python3";
    buildPythonApplication = args: args;
    requiredPythonModules = drvs: drvs;
  };
  helpers = import ../../nix/package.nix {
    inherit lib python3Packages;
    iproute2 = package false "iproute2";
    shadow = package false "shadow";
    zstd = package false "zstd";
  };
in
{
  files = map (f: lib.removePrefix "${repo}/" (toString f)) (
    lib.fileset.toList helpers.passthru.sourceFiles
  );
  inherit (helpers) sourceRoot enabledTestPaths;
  checkPrograms = map (p: p.pname) (lib.filter (p: !p.pythonModule) helpers.nativeCheckInputs);
  checkModules = map (p: p.pname) (lib.filter (p: p.pythonModule) helpers.nativeCheckInputs);
  checkEnv = helpers.env or { };
}
