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

      # One NixOS system from image modules, on the given nixpkgs.
      image =
        nixpkgs: system: modules:
        nixpkgs.lib.nixosSystem {
          modules = modules ++ [ { nixpkgs.hostPlatform = system; } ];
        };
      # The unattended kexec image: the kexec installer with the noninteractive mix-in, named
      # after its release asset (helpers/src/nixos_images/data/layout.json), as
      # nix-community/nixos-images names it.
      noninteractiveKexec = system: [
        self.nixosModules.kexec-installer
        self.nixosModules.noninteractive
        { system.kexec-installer.name = imagesLib.kexecInstallerName system "kexecNoninteractive"; }
      ];

      # The build outputs of every image on one nixpkgs input, under our names (suffix "" or
      # "-nixos-stable") and under nix-community/nixos-images' names (channel
      # "nixos-unstable" or "nixos-stable"), which nixos-anywhere and clan use.
      images =
        nixpkgs: suffix: channel: system:
        let
          build = modules: (image nixpkgs system modules).config.system.build;
          kexec = (build [ self.nixosModules.kexec-installer ]).kexecInstallerTarball;
          unattended = (build (noninteractiveKexec system)).kexecInstallerTarball;
          netboot = build [ self.nixosModules.netboot-installer ];
          iso = (build [ self.nixosModules.image-installer ]).isoImage;
        in
        {
          "kexec-installer-${system}${suffix}" = kexec;
          "kexec-installer-noninteractive-${system}${suffix}" = unattended;
          "netboot-${system}${suffix}" = netboot.netbootInstaller;
          "image-installer-${system}${suffix}" = iso;
          # README, "Coming from nix-community/nixos-images".
          "kexec-installer-${channel}" = kexec;
          "kexec-installer-${channel}-noninteractive" = unattended;
          "netboot-${channel}" = netboot.netbootInstaller;
          "netboot-installer-${channel}" = netboot.netboot;
          "image-installer-${channel}" = iso;
        };

      # Upper bounds, in MiB, for what users download and what lives in RAM; the size
      # check fails when an update grows an image past them (raise them on purpose).
      sizeBudgets = {
        kexecTarball = 700;
        kexecNoninteractiveTarball = 600;
        iso = 1500;
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
        firmware = ./nix/firmware.nix;
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
        images nixos-unstable "" "nixos-unstable" system
        // images nixos-stable "-nixos-stable" "nixos-stable" system
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
          lib = nixos-unstable.lib;

          # nix/lean.nix's checks on the real nixosSystem of every image at both pins (the
          # evaluation tests run them on stubs of nixpkgs' profiles; this proves the stubs).
          leanFailures = lib.concatMap (
            { pin, nixpkgs }:
            lib.concatMap (
              {
                name,
                modules,
                unattended,
              }:
              let
                config = (image nixpkgs system modules).config;
                checks = import ./nix/lean.nix { inherit (nixpkgs) lib; } config unattended;
              in
              map (c: "${pin} ${name}: not ${c.what}") (lib.filter (c: !c.ok) checks)
            ) leanImages
          ) [
            {
              pin = "nixos-unstable";
              nixpkgs = nixos-unstable;
            }
            {
              pin = "nixos-stable";
              nixpkgs = nixos-stable;
            }
          ];
          leanImages = [
            {
              name = "kexec-installer";
              modules = [ self.nixosModules.kexec-installer ];
              unattended = false;
            }
            {
              name = "kexec-installer-noninteractive";
              modules = noninteractiveKexec system;
              unattended = true;
            }
            {
              name = "netboot-installer";
              modules = [ self.nixosModules.netboot-installer ];
              unattended = false;
            }
            {
              # A user who turns NixOS' DHCP off: no catch-all DHCP networks of ours either.
              name = "kexec-installer without DHCP";
              modules = [
                self.nixosModules.kexec-installer
                { networking.useDHCP = false; }
              ];
              unattended = false;
            }
            {
              name = "image-installer";
              modules = [ self.nixosModules.image-installer ];
              unattended = false;
            }
          ];
          # The built tarball's launcher, run in the build sandbox: a bundle that lacks a
          # module its Python needs (collections.abc on CPython 3.13) fails here.
          kexecRun =
            id: tarball:
            pkgs.runCommand "kexec-run-${id}" { nativeBuildInputs = [ pkgs.jq ]; } ''
              tar -xzf ${tarball}
              ./kexec/run --help > help
              grep -q -- --kexec-extra-flags help
              status=0; ./kexec/run --no-such-option 2> bad || status=$?
              test "$status" -eq 2
              grep -q -- --no-such-option bad
              status=0; ./kexec/run --dry-run --json > report.json || status=$?
              test "$status" -eq 1 # refused here: no root, no kexec
              jq -e '.checks | map(select(.name == "tarball"))[0].ok' report.json
              touch $out
            '';
        in
        {
          kexec-run = kexecRun "kexec" "${packages."kexec-installer-${system}"}/${names.kexec}";
          kexec-run-noninteractive =
            kexecRun "kexec-noninteractive"
              "${packages."kexec-installer-noninteractive-${system}"}/${names.kexecNoninteractive}";
          lean = pkgs.runCommand "lean" { } ''
            ${lib.concatMapStrings (f: "echo ${lib.escapeShellArg f} >&2\n") leanFailures}
            ${if leanFailures == [ ] then "touch $out" else "exit 1"}
          '';
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
          iso-size =
            sizeCheck "iso" "ISO image" "${packages."image-installer-${system}"}/iso/${names.iso}"
              sizeBudgets.iso;
        }
        // nixos-unstable.lib.optionalAttrs (system == "x86_64-linux") {
          vm-kexec = import ./nix/tests/kexec.nix {
            inherit pkgs;
            kexecModule = self.nixosModules.kexec-installer;
          };
          vm-boot = import ./nix/tests/boot.nix {
            inherit pkgs;
            netbootModule = self.nixosModules.netboot-installer;
            imageModule = self.nixosModules.image-installer;
          };
        }
        # The tarball nixos-anywhere uses by default. (Smaller machines belong to the RAM
        # measurement: test-instrumentation makes an out-of-memory VM panic.)
        // nixos-unstable.lib.optionalAttrs (system == "x86_64-linux") {
          vm-kexec-noninteractive = import ./nix/tests/kexec.nix {
            inherit pkgs;
            kexecModule.imports = noninteractiveKexec system;
          };
        }
      );
    };
}
