{
  description = "NixOS installer images for machines you cannot touch: kexec tarball, ISO, netboot";

  inputs = {
    nixos-unstable.url = "git+https://github.com/NixOS/nixpkgs?ref=nixpkgs-unstable&shallow=1";
    nixos-stable.url = "git+https://github.com/NixOS/nixpkgs?ref=nixos-26.05&shallow=1";
  };

  outputs =
    {
      self,
      nixos-unstable,
      nixos-stable,
    }:
    let
      imagesLib = import ./nix/lib.nix;
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system;
          }) imagesLib.systems
        );

      # One NixOS system per image module, on the given nixpkgs.
      image =
        nixpkgs: system: module:
        nixpkgs.lib.nixosSystem {
          modules = [
            module
            { nixpkgs.hostPlatform = system; }
          ];
        };

      # The build outputs of every image, for one nixpkgs; suffix "" or "-nixos-stable".
      images =
        nixpkgs: suffix: system:
        let
          build = module: (image nixpkgs system module).config.system.build;
        in
        {
          "kexec-installer-${system}${suffix}" =
            (build self.nixosModules.kexec-installer).kexecInstallerTarball;
          "kexec-installer-noninteractive-${system}${suffix}" =
            (build self.nixosModules.noninteractive).kexecInstallerTarball;
          "netboot-${system}${suffix}" =
            (build self.nixosModules.netboot-installer).netbootInstaller;
          "image-installer-${system}${suffix}" =
            (build self.nixosModules.image-installer).isoImage;
        };

      # Upper bounds, in MiB, for what users download and what lives in RAM; the size
      # check fails when an update grows an image past them (raise them on purpose).
      sizeBudgets = {
        kexecTarball = 700;
        kexecNoninteractiveTarball = 600;
      };
    in
    {
      nixosModules = {
        kexec-installer = ./nix/kexec/default.nix;
        noninteractive = ./nix/kexec/noninteractive.nix;
        netboot-installer = ./nix/netboot/default.nix;
        image-installer = ./nix/image/default.nix;
        # The shared pieces, for building an installer of one's own.
        installer = ./nix/installer.nix;
        console = ./nix/console.nix;
        deadman = ./nix/deadman.nix;
        kernel = ./nix/kernel.nix;
        networkd = ./nix/networkd.nix;
        nix-settings = ./nix/nix-settings.nix;
        tor = ./nix/tor.nix;
      };

      packages = forAllSystems (
        system:
        let
          pkgs = nixos-unstable.legacyPackages.${system};
        in
        images nixos-unstable "" system
        // images nixos-stable "-nixos-stable" system
        // rec {
          helpers = pkgs.callPackage ./nix/package.nix { };
          default = helpers;
        }
      );

      formatter = forAllSystems (
        system: import ./nix/formatter.nix nixos-unstable.legacyPackages.${system}
      );

      devShells = forAllSystems (
        system:
        let
          pkgs = nixos-unstable.legacyPackages.${system};
        in
        {
          default = pkgs.mkShell {
            packages = [
              (import ./nix/dev-python.nix {
                inherit pkgs;
                inherit (self.packages.${system}) helpers;
              })
              self.formatter.${system}
              pkgs.ruff
              pkgs.shellcheck
              pkgs.iproute2
            ];
          };
        }
      );

      checks = forAllSystems (
        system:
        let
          pkgs = nixos-unstable.legacyPackages.${system};
          packages = self.packages.${system};
          # id names the derivation (a store path name: no spaces), what the message.
          sizeCheck =
            id: name: file: budget:
            pkgs.runCommand "size-${id}" { } ''
              size=$(stat -c %s ${file})
              echo "${name}: $((size / 1048576)) MiB, budget ${toString budget} MiB"
              test "$size" -le $((${toString budget} * 1048576)) || {
                echo "${name} grew past its budget: shrink it or raise sizeBudgets in flake.nix" >&2
                exit 1
              }
              touch $out
            '';
          names = imagesLib.assetNames system;
        in
        {
          # The package build runs the pytest suite (the real-boundary tests skip themselves).
          inherit (packages) helpers;
          lint = import ./nix/lint.nix {
            inherit pkgs;
            inherit (packages) helpers;
            src = self;
          };
          format = pkgs.runCommand "format" { nativeBuildInputs = [ self.formatter.${system} ]; } ''
            cp -r ${self} src && chmod -R u+w src && cd src
            # Outside a git checkout treefmt would take its config's directory (the store)
            # as the tree root and format nothing.
            treefmt --ci --tree-root .
            touch $out
          '';
          kexec-size =
            sizeCheck "kexec" "kexec tarball" "${packages."kexec-installer-${system}"}/${names.kexec}"
              sizeBudgets.kexecTarball;
          kexec-noninteractive-size =
            sizeCheck "kexec-noninteractive" "noninteractive kexec tarball"
              "${packages."kexec-installer-noninteractive-${system}"}/${names.kexecNoninteractive}"
              sizeBudgets.kexecNoninteractiveTarball;
        }
        // nixos-unstable.lib.optionalAttrs (system == "x86_64-linux") {
          vm-kexec = import ./nix/tests/kexec.nix {
            inherit pkgs;
            kexecModule = self.nixosModules.kexec-installer;
          };
          # The tarball nixos-anywhere uses by default.
          vm-kexec-noninteractive = import ./nix/tests/kexec.nix {
            inherit pkgs;
            kexecModule = self.nixosModules.noninteractive;
          };
          vm-boot = import ./nix/tests/boot.nix {
            inherit pkgs;
            netbootModule = self.nixosModules.netboot-installer;
            imageModule = self.nixosModules.image-installer;
          };
        }
      );
    };
}
