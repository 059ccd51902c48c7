# Booting the netboot files and the ISO (CD and USB stick, BIOS and UEFI), and the login
# banner: the root password on tty1, none on the serial console; credentials given at boot
# through SMBIOS (a password hash, an ssh key that then logs in). Images are built with the
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
  # Credentials given at boot as a VM gives them: SMBIOS type 11 strings (systemd.exec(5)).
  inherit (import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs)
    snakeOilEd25519PrivateKey
    snakeOilEd25519PublicKey
    ;
  # A yescrypt hash of "password" (tests/test_root_password.py has the same).
  hash = "$y$j9T$Tq7H4hUaxQqhSkUhGm0H31$WgBsjT0BHhRI1vyqsNDC2vKl./Peu4jxTvZQtMkRvs3";
  publicKey = lib.trim snakeOilEd25519PublicKey;
  smbios = name: value: "-smbios 'type=11,value=io.systemd.credential:${name}=${value}'";
  credentialsCommand = lib.concatStringsSep " " [
    netbootCommand
    (smbios "passwd.hashed-password.root" hash)
    (smbios "ssh.authorized_keys.root" publicKey)
  ];
  passwordFile = (import ../lib.nix).rootPasswordFile;
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

    with subtest("credentials given at boot: a password hash and an ssh key, by SMBIOS"):
        given = create_machine("${credentialsCommand}", name="credentials")
        given.start()
        installer_is_up(given)
        shadow = given.succeed("getent shadow root").split(":")[1]
        assert shadow == "${hash}", shadow
        given.succeed("grep -q 'set at boot by the systemd credential' ${passwordFile}")
        given.succeed("grep -qF '${publicKey}' /root/.ssh/authorized_keys")
        private = open("${snakeOilEd25519PrivateKey}").read()
        given.succeed(f"umask 077; printf '%s' '{private}' > /tmp/key")
        given.succeed(
            "ssh -i /tmp/key -o StrictHostKeyChecking=no -o BatchMode=yes root@127.0.0.1 true"
        )
        given.shutdown()

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
