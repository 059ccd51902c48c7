# Booting the netboot files and the ISO (CD and USB stick, BIOS and UEFI), and the login
# banner: the root password on tty1, none on the serial console. Images are built with the
# test driver's backdoor.
{
  pkgs,
  netbootModule,
  imageModule,
}:
let
  lib = pkgs.lib;
  instrumented =
    module:
    pkgs.nixos {
      imports = [
        module
        (pkgs.path + "/nixos/modules/testing/test-instrumentation.nix")
      ];
    };
  netboot = (instrumented netbootModule).config;
  iso = (instrumented imageModule).config;
  isoFile = "${iso.system.build.isoImage}/iso/${iso.image.fileName}";
  qemu = "${pkgs.qemu_test}/bin/qemu-kvm -m 2048 -smp 2";
  netbootCommand = lib.concatStringsSep " " [
    qemu
    "-kernel ${netboot.system.build.netbootInstaller}/${netboot.system.boot.loader.kernelFile}"
    "-initrd ${netboot.system.build.netbootInstaller}/initrd"
    "-append '${
      lib.concatStringsSep " " (
        [ "init=${netboot.system.build.toplevel}/init" ] ++ netboot.boot.kernelParams
      )
    }'"
  ];
  uefi = "-bios ${pkgs.OVMF.fd}/FV/OVMF.fd";
  cd = "-cdrom ${isoFile}";
  usb = "-device usb-ehci -drive if=none,id=stick,format=raw,readonly=on,file=${isoFile} -device usb-storage,drive=stick";
  isoBoots = {
    bios_cd = "${qemu} ${cd}";
    bios_usb = "${qemu} ${usb}";
    uefi_cd = "${qemu} ${uefi} ${cd}";
    uefi_usb = "${qemu} ${uefi} ${usb}";
  };
in
pkgs.testers.runNixOSTest {
  name = "nixos-images-boot";
  nodes = { };
  testScript = ''
    def installer_is_up(machine):
        machine.wait_for_unit("multi-user.target")
        machine.wait_for_unit("sshd.service")
        machine.succeed("systemctl is-active root-password.service")
        # No state was carried over: restore-network is skipped, DHCP is up to networkd.
        machine.succeed("systemctl show -p ConditionResult restore-network.service | grep -q no")
        machine.succeed("systemctl is-active systemd-networkd.service")
        machine.fail("systemctl is-active NetworkManager.service")

    netboot = create_machine("${netbootCommand}", name="netboot")
    netboot.start()
    installer_is_up(netboot)
    netboot.shutdown()

    ${lib.concatStrings (
      lib.mapAttrsToList (name: command: ''
        with subtest("ISO boots: ${name}"):
            machine = create_machine("${command}", name="${name}")
            machine.start()
            installer_is_up(machine)
            password = machine.succeed("cat ${(import ../lib.nix).rootPasswordFile}").strip()
            machine.wait_until_tty_matches("1", password.split("-")[0])
            # The serial consoles' banner as root's login shell there runs it (the test driver
            # turns ttyS0's getty off): no password (providers log serial consoles).
            serial = machine.succeed("installer-banner --no-password --for-screen 80x24")
            assert password not in serial and "not on serial consoles" in serial, serial
            machine.shutdown()
      '') isoBoots
    )}
  '';
}
