# The kexec hand-off in NixOS VMs: a NixOS machine with a static address, a static route,
# its own ssh host key and machine-id runs kexec/run from our tarball; after the kexec the
# installer must have the same host key, machine-id, address and route, and accept the key
# root had. The installer is built with the test driver's backdoor so the script can ask.
{
  pkgs,
  kexecModule,
  # The machine that kexecs. The low-RAM floor is measured elsewhere: test-instrumentation
  # adds panic=1, boot.panic_on_fail and vm.panic_on_oom, so a tight run here panics.
  memorySize ? 2048,
}:
let
  lib = pkgs.lib;
  installer = pkgs.nixos {
    imports = [
      kexecModule
      (pkgs.path + "/nixos/modules/testing/test-instrumentation.nix")
    ];
  };
  tarball = installer.config.system.build.kexecInstallerTarball;
  tarballName = installer.config.nixos-images.kexec.tarballName;
  snakeoil = import (pkgs.path + "/nixos/tests/ssh-keys.nix") pkgs;
in
pkgs.testers.runNixOSTest {
  name = "nixos-images-kexec-${lib.removeSuffix ".tar.gz" tarballName}-${toString memorySize}";
  nodes = {
    machine = {
      virtualisation.vlans = [ 1 ];
      virtualisation.memorySize = memorySize;
      # The tarball and kexec/run's copy of its initrd sit on this disk: the default 1 GiB
      # is too small for them (nixpkgs' own kexec test uses 4096 MiB too).
      virtualisation.diskSize = 4096;
      networking.interfaces.eth1.ipv4.routes = [
        {
          address = "192.168.42.0";
          prefixLength = 24;
          via = "192.168.1.1";
        }
      ];
      services.openssh.enable = true;
      users.users.root.openssh.authorizedKeys.keys = [ snakeoil.snakeOilPublicKey ];
    };
    client = {
      virtualisation.vlans = [ 1 ];
    };
  };
  testScript = ''
    start_all()
    machine.wait_for_unit("sshd.service")
    host_key = machine.succeed("cat /etc/ssh/ssh_host_ed25519_key.pub")
    machine_id = machine.succeed("cat /etc/machine-id")
    address = machine.succeed("ip -4 -o addr show eth1 | awk '{print $4}'").strip()

    machine.succeed("mkdir -p /root/kexec && tar -C /root/kexec -xzf ${tarball}/${tarballName}")
    out = machine.succeed("/root/kexec/kexec/run --kexec-extra-flags '''")
    assert "machine will boot into nixos in 6s..." in out, out

    # The backdoor drops with the old kernel and comes back from the installer.
    machine.connected = False
    machine.connect()
    machine.succeed("grep -q VARIANT_ID=installer /etc/os-release")
    machine.wait_for_unit("restore-network.service")
    machine.wait_for_unit("systemd-networkd.service")
    # networkd owns the NICs restore-network configured; NetworkManager is off.
    machine.fail("systemctl is-active NetworkManager.service")
    assert machine.succeed("stat -c %a /root /root/.ssh").split() == ["700", "700"]
    assert machine.succeed("cat /etc/ssh/ssh_host_ed25519_key.pub") == host_key
    assert machine.succeed("cat /etc/machine-id") == machine_id
    machine.wait_until_succeeds(f"ip -4 -o addr show eth1 | grep -F '{address}'")
    machine.succeed("ip -4 route show 192.168.42.0/24 | grep -F 'via 192.168.1.1'")

    client.succeed("install -m 600 ${snakeoil.snakeOilPrivateKey} /root/key")
    client.wait_until_succeeds(
        f"ssh -i /root/key -o StrictHostKeyChecking=no root@{address.split('/')[0]} true"
    )
    scanned = client.succeed(f"ssh-keyscan -t ed25519 {address.split('/')[0]} | cut -d' ' -f2-")
    assert scanned.split()[:2] == host_key.split()[:2], (scanned, host_key)
  '';
}
