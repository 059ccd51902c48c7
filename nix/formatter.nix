# `nix fmt`: treefmt with nixfmt for Nix, ruff for Python, shellcheck for the shell scripts.
pkgs:
pkgs.treefmt.withConfig {
  name = "nixos-images-fmt";
  runtimeInputs = [
    pkgs.nixfmt
    pkgs.ruff
    pkgs.shellcheck
  ];
  settings = {
    on-unmatched = "info";
    formatter = {
      nixfmt = {
        command = "nixfmt";
        includes = [ "*.nix" ];
      };
      ruff-format = {
        command = "ruff";
        options = [ "format" ];
        includes = [ "*.py" ];
      };
      ruff-check = {
        command = "ruff";
        options = [
          "check"
          "--fix"
        ];
        includes = [ "*.py" ];
      };
      shellcheck = {
        command = "shellcheck";
        includes = [
          "*.sh"
          "tests/run"
          ".ci/run"
        ];
      };
    };
  };
}
