"""restore-network, the program: dry run, writing units next to others, one line for bad input,
and any dump or state file, however odd, gives units or one clean error.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nixos_images import restore_network
from nixos_images.errors import InputError
from nixos_images.restore_network import generate, write_units
from nixos_images.state import StateDir
from recorded import BOND_VLAN, SOURCE


def test_dry_run_prints_units_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "network"
    run_main("--dry-run", "--state", str(SOURCE.root), str(target))
    assert "### 10-restored-eth-up.network" in capsys.readouterr().out
    assert not target.exists()


def test_second_run_replaces_its_own_units_and_leaves_others_alone(tmp_path: Path) -> None:
    target = tmp_path / "network"
    target.mkdir()
    (target / "10-restored-gone.network").write_text("stale")
    (target / "50-generator.network").write_text("not ours")
    run_main("--state", str(SOURCE.root), str(target))
    first = sorted(p.name for p in target.iterdir())
    assert "10-restored-gone.network" not in first
    assert "50-generator.network" in first
    run_main("--state", str(BOND_VLAN.root), str(target))
    second = sorted(p.name for p in target.iterdir())
    assert "10-restored-eth-up.network" not in second
    assert "10-restored-bond0.netdev" in second
    assert "50-generator.network" in second
    assert not [p for p in target.iterdir() if p.name.startswith(".")]


def run_main(*argv: str) -> None:
    old = sys.argv
    sys.argv = ["restore-network", *argv]
    try:
        restore_network.main()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    finally:
        sys.argv = old


def broken_state(tmp_path: Path, name: str, content: str | None) -> StateDir:
    state = StateDir(tmp_path / "state")
    shutil.copytree(SOURCE.network, state.network)
    path = state.network / name
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    return state


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("links.json", None, "links.json: file not found"),
        ("addresses.json", "{not json", "addresses.json: invalid JSON"),
        ("routes-v4.json", '{"dst": "default"}', "routes-v4.json: expected a JSON list"),
        (
            "links.json",
            '[{"ifindex": 1, "ifname": 7}]',
            "links.json: item 0: 'ifname' must be a string",
        ),
        (
            "addresses.json",
            '[{"ifname": "x", "addr_info": [{"local": "1.2.3.400", "prefixlen": 8}]}]',
            "addresses.json: item 0: addr_info 0: 'local' is not an IP address",
        ),
        (
            "routes-v6.json",
            '[{"dst": "10.0.0.0/8"}]',
            "routes-v6.json: item 0: 'dst' 10.0.0.0/8 is not IPv6",
        ),
        ("dns", "1.1.1.1\nexample.org\n", "dns:2: not an IP address: 'example.org'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, problem: str
) -> None:
    state = broken_state(tmp_path, name, content)
    target = tmp_path / "out"
    target.mkdir()
    (target / "10-restored-old.network").write_text("old")
    sys_argv = sys.argv
    sys.argv = ["restore-network", "--state", str(state.root), str(target)]
    try:
        with pytest.raises(SystemExit) as exit_:
            restore_network.main()
    finally:
        sys.argv = sys_argv
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1
    assert err.startswith("restore-network: ")
    assert problem in err
    assert [p.name for p in target.iterdir()] == ["10-restored-old.network"]


def test_write_units_refuses_a_file_as_target(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(Exception, match="not a directory"):
        write_units(generate(SOURCE), target)


# Property tests: arbitrary JSON, and whole dumps shaped like ip's with names that line up
# across the files but arbitrary values, never give a traceback: the result is units whose
# every line is well-formed, or one InputError line.
_scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)


_json = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


_name = st.sampled_from(["eth0", "br0", "bond0", "eth0.5", "lo"] * 10 + ["a\nb", "x]", "a=b"])


_addr = st.sampled_from(["10.0.0.1", "fe80::1", "2001:db8::1", "192.0.2.1"])


_ip = st.sampled_from(["10.0.0.1", "fe80::1", "2001:db8::1", "default", "10.0.0.0/8", "::/0"])


_mac = st.sampled_from(["02:00:00:00:00:01"] * 3 + ["02:00:00:00:00:02", "00:00:00:00:00:00", "zz"])


def _maybe(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Mostly a plausible value, now and then anything at all."""
    return st.sampled_from(range(100)).flatmap(lambda n: _scalars | _json if n == 57 else strategy)


def _obj(
    required: tuple[str, ...] = (), **fields: st.SearchStrategy[object]
) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {k: _maybe(v) for k, v in fields.items() if k in required},
        optional={k: _maybe(v) for k, v in fields.items() if k not in required},
    )


_kind_data = st.dictionaries(
    st.sampled_from(["mode", "miimon", "id", "protocol", "stp_state", "xmit_hash_policy"]),
    _scalars | st.sampled_from(["802.3ad", "802.1ad", "layer3+4"]),
)


_dump = st.fixed_dictionaries(
    {
        "links.json": st.lists(
            max_size=4,
            elements=_obj(
                ("ifindex", "ifname", "address", "link_type"),
                ifindex=st.integers(1, 9),
                ifname=_name,
                address=_mac,
                permaddr=_mac,
                mtu=st.integers(),
                link_type=st.sampled_from(["ether"] * 4 + ["loopback", "none"]),
                master=_name,
                link=_name,
                linkinfo=_obj(
                    ("info_kind",),
                    info_kind=st.sampled_from(
                        ["veth"] * 4 + ["bond", "bridge", "vlan", "wireguard"]
                    ),
                    info_data=_kind_data,
                    info_slave_data=_obj(perm_hwaddr=_mac),
                ),
            ),
        ),
        "addresses.json": st.lists(
            max_size=4,
            elements=_obj(
                ("ifname", "addr_info"),
                ifname=_name,
                addr_info=st.lists(
                    max_size=4,
                    elements=_obj(
                        ("local", "prefixlen"),
                        family=st.sampled_from(["inet", "inet6"]),
                        local=_addr,
                        address=_addr,
                        prefixlen=st.sampled_from([8, 24, 64] * 5 + [-1, 33, 129]),
                        scope=st.sampled_from(["global", "link", "host"]),
                        dynamic=st.booleans(),
                        valid_life_time=st.integers(),
                        noprefixroute=st.booleans(),
                    ),
                ),
            ),
        ),
        "routes-v4.json": st.lists(
            max_size=4,
            elements=_obj(
                ("dst", "dev"),
                dst=st.sampled_from(["default", "10.0.0.0/8", "192.0.2.0/24", "10.1.2.3"]),
                gateway=_addr,
                dev=_name,
                metric=st.integers(),
                prefsrc=_addr,
                protocol=st.sampled_from(["kernel", "static", "dhcp", "ra"]),
                table=st.just("local"),
                type=st.sampled_from(["blackhole", "unreachable", "local", "unicast"]),
                flags=st.lists(st.sampled_from(["onlink", "linkdown"])),
                via=_obj(family=st.just("inet6"), host=_addr),
                metrics=st.lists(max_size=4, elements=_obj(mtu=st.integers())),
                nexthops=st.lists(
                    max_size=4, elements=_obj(gateway=_addr, dev=_name, flags=st.just(["onlink"]))
                ),
            ),
        ),
        "dns": st.lists(_addr, max_size=3).map("\n".join),
    }
)


_LINE = re.compile(r"(#[^\n]*|\[[A-Za-z0-9]+\]|[A-Za-z0-9]+=[^\n\[\]]*|)")


def _check_units_or_clean_error(state: StateDir) -> None:
    try:
        units = generate(state)
    except InputError as e:
        message = str(e)
        assert "\n" not in message
        return
    for unit in units:
        assert re.fullmatch(r"10-restored-[A-Za-z0-9_.@+-]+\.(network|netdev)", unit.name)
        for line in unit.text.splitlines():
            assert _LINE.fullmatch(line), line


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dump=_dump)
def test_any_ip_shaped_dump_gives_units_or_one_clean_error(
    tmp_path: Path, dump: dict[str, object]
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        state = StateDir(Path(work))
        state.network.mkdir()
        for name, value in dump.items():
            text = value if isinstance(value, str) else json.dumps(value)
            (state.network / name).write_text(text)
        state.routes_v6.write_text(json.dumps(dump["routes-v4.json"]).replace("10.0.0", "fd00::"))
        _check_units_or_clean_error(state)


STATE_FILES = ["links.json", "addresses.json", "routes-v4.json", "routes-v6.json",
               "rules-v4.json", "rules-v6.json", "drivers.json", "dhcp.json"]  # fmt: skip


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(STATE_FILES),
    value=_json,
)
def test_any_json_in_one_file_gives_units_or_one_clean_error(
    tmp_path: Path, name: str, value: object
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        _check_units_or_clean_error(broken_state(Path(work), name, json.dumps(value)))


def test_a_killed_runs_staging_directory_is_cleared(tmp_path: Path) -> None:
    """SIGKILL skips the cleanup; the next run removes what that one left."""
    target = tmp_path / "network"
    stale = target / ".restore-network.4242"
    stale.mkdir(parents=True)
    (stale / "10-restored-eth0.network").write_text("[Match]\n")
    restore_network.write_units(restore_network.generate(SOURCE), target)
    assert not stale.exists()
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []
