# ruff and mypy --strict (flags spelled out in helpers/pyproject.toml) as a flake check.
{
  pkgs,
  src,
  helpers,
}:
let
  python = import ./dev-python.nix { inherit pkgs helpers; };
in
pkgs.runCommand "lint"
  {
    nativeBuildInputs = [
      python
      pkgs.ruff
    ];
  }
  ''
    cp -r ${src} src && chmod -R u+w src && cd src
    export RUFF_CACHE_DIR=$TMPDIR/ruff MYPY_CACHE_DIR=$TMPDIR/mypy
    ruff check helpers tests bench
    ruff format --check helpers tests bench
    MYPYPATH=helpers/src mypy --config-file helpers/pyproject.toml helpers/src tests bench
    touch $out
  ''
