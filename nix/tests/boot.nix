# Booting the netboot files and the ISO (CD and USB stick, BIOS and UEFI), and the login
# banner: the root password on tty1, none on the serial console; credentials given at boot
# (a password hash, an ssh key that then logs in) through SMBIOS on netboot and the ISO, and on
# netboot's kernel command line; the dead-man switch asked for
# on the command line (it reboots when nobody logs in, stands down after an ssh login). Images
# are built with the test driver's backdoor.
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
  netbootParams = [ "init=${netboot.system.build.toplevel}/init" ] ++ netboot.boot.kernelParams;
  netbootWith =
    extraParams:
    lib.concatStringsSep " " [
      qemu
      "-kernel ${netboot.system.build.netbootInstaller}/${netboot.system.boot.loader.kernelFile}"
      "-initrd ${netboot.system.build.netbootInstaller}/initrd"
      "-append '${lib.concatStringsSep " " (netbootParams ++ extraParams)}'"
    ];
  netbootCommand = netbootWith [ ];
  # The dead-man switch asked for at boot, as kexec/run --deadman asks for it.
  switch = (import ../lib.nix).deadman;
  deadman = "${switch.parameter}=1";
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
  credentialsWith =
    extraParams:
    lib.concatStringsSep " " [
      (netbootWith extraParams)
      (smbios "passwd.hashed-password.root" hash)
      (smbios "ssh.authorized_keys.root" publicKey)
    ];
  credentialsCommand = credentialsWith [ ];
  # The same two credentials on the ISO (no command line to edit: SMBIOS is the way in a VM),
  # and on netboot's kernel command line (systemd.set_credential=, the key's blanks quoted as
  # the kernel reads a quoted parameter).
  isoCredentialsCommand = lib.concatStringsSep " " [
    "${qemu} ${cd}"
    (smbios "passwd.hashed-password.root" hash)
    (smbios "ssh.authorized_keys.root" publicKey)
  ];
  cmdlineCredentialsCommand = netbootWith [
    "systemd.set_credential=passwd.hashed-password.root:${hash}"
    "\"systemd.set_credential=ssh.authorized_keys.root:${publicKey}\""
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

    def credentials_work(given):
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

    with subtest("credentials given at boot: a password hash and an ssh key, by SMBIOS"):
        given = create_machine("${credentialsCommand}", name="credentials")
        given.start()
        credentials_work(given)

    with subtest("the same credentials on the ISO, by SMBIOS"):
        given = create_machine("${isoCredentialsCommand}", name="iso_credentials")
        given.start()
        credentials_work(given)

    with subtest("the same credentials on netboot's kernel command line"):
        given = create_machine("${cmdlineCredentialsCommand}", name="cmdline_credentials")
        given.start()
        credentials_work(given)

    with subtest("dead-man switch: nobody logs in (the test's backdoor is no login), it reboots"):
        lost = create_machine("${netbootWith [ deadman ]}", name="deadman")
        lost.start()
        installer_is_up(lost)
        lost.wait_for_console_text("rebooting to the system on disk in 1 min")
        lost.wait_for_console_text("nobody logged in within 1 min: rebooting")
        lost.wait_for_console_text("reboot: Restarting system")
        lost.crash()

    with subtest("dead-man switch: an ssh login stands it down for good"):
        reached = create_machine("${credentialsWith [ deadman ]}", name="reached")
        reached.start()
        installer_is_up(reached)
        private = open("${snakeOilEd25519PrivateKey}").read()
        reached.succeed(f"umask 077; printf '%s' '{private}' > /tmp/key")
        reached.succeed(
            "ssh -i /tmp/key -o StrictHostKeyChecking=no -o BatchMode=yes root@127.0.0.1 true"
        )
        stood_down = "dead-man switch stood down: someone logged in"
        reached.wait_until_succeeds(
            f"journalctl -b -u nixos-images-deadman.service | grep -q '{stood_down}'", timeout=60
        )
        # Past the deadline: still up.
        reached.wait_until_succeeds("test $(cut -d. -f1 /proc/uptime) -gt 90", timeout=120)
        reached.fail("journalctl -b | grep -q 'rebooting to the system on disk:'")
        reached.shutdown()

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
