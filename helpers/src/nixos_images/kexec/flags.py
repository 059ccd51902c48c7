"""--kexec-extra-flags, read as kexec-tools reads them (docs/kexec.md, "Extra flags").

nixos-anywhere passes "flags for kexec", but kexec/run runs kexec-tools three ways: `--load`,
later `--exec`, and `--unload` when something fails. Each flag goes where it means what its
caller meant:

- `-y`/`--no-sync`: kexec-tools syncs at the end of every run unless told not to (kexec.c:
  `if ((result == 0) && do_sync) sync();`), so it goes to all three, and kexec/run's own
  `sync` before the boot is left out too.
- `--append=X`/`--command-line=X` (kexec-tools: one option, the last wins): X is added to the
  installer's own command line, which never goes away.
- `-s`/`-c`/`-a` pick the syscall as `--syscall file|load|auto` does: kexec/run passes its own
  syscall flag, and tries the other syscall only under auto.
- `-x`/`--no-ifdown` go to `--exec`, `-d`/`--debug` to every run; other loader options
  (`--mem-min=...`, `-t TYPE`, ...) to `--load`, in the order given.
- Refused, with one line: what would load another kernel or initrd, or run kexec-tools in
  another mode (`--reuse-cmdline`, `--initrd`, `-l`, `-e`, `-u`, `-p`, `-f`, ...), a file
  name, and a `--nixos-images-...` token this kexec/run does not know.

Long options are first resolved as getopt_long resolves them (an unambiguous prefix is the
whole name; KEXEC_LONG_OPTIONS), so an abbreviation is judged as what kexec-tools would read.

Tokens starting with `--nixos-images-` are kexec/run's own (TOKENS): nixos-anywhere has no
other way to reach it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nixos_images import layout
from nixos_images.errors import InputError
from nixos_images.kexec.models import SyscallChoice
from nixos_images.sizes import MiB

if TYPE_CHECKING:
    from collections.abc import Sequence

WHERE = "--kexec-extra-flags"
PREFIX = "--nixos-images-"
# kexec/run's own tokens: name -> what its value means (None: a token without a value).
SSH_KEY_TOKEN = f"{PREFIX}ssh-key"
DEADMAN_TOKEN = f"{PREFIX}deadman"
NO_KEYS_TOKEN = f"{PREFIX}no-keys-ok"
SKIP_MEMORY_TOKEN = f"{PREFIX}skip-memory-check"
TOKENS: dict[str, str | None] = {
    DEADMAN_TOKEN: "minutes to wait for a login before rebooting to this system, or off",
    f"{PREFIX}reserve-mib": "MiB of RAM the running installer needs beyond its initrd",
    f"{PREFIX}skip-driver-check": None,
    NO_KEYS_TOKEN: None,
    SKIP_MEMORY_TOKEN: None,
    SSH_KEY_TOKEN: "an ssh public key, or a file of them, that the installer's root accepts too",
}
SYNC = frozenset({"-y", "--no-sync"})
EXEC_ONLY = frozenset({"-x", "--no-ifdown"})
EVERY_RUN = frozenset({"-d", "--debug"})
SYSCALLS = {
    "-s": SyscallChoice.FILE,
    "--kexec-file-syscall": SyscallChoice.FILE,
    "-c": SyscallChoice.LOAD,
    "--kexec-syscall": SyscallChoice.LOAD,
    "-a": SyscallChoice.AUTO,
    "--kexec-syscall-auto": SyscallChoice.AUTO,
}
CMDLINE = frozenset({"--append", "--command-line"})
REFUSED = {
    "--reuse-cmdline": "the installer needs its own command line (add to it with --append=)",
    "--initrd": "the installer's initrd is the tarball's",
    "--ramdisk": "the installer's initrd is the tarball's",
    "--reuseinitrd": "the installer's initrd is the tarball's",
    "-l": "kexec/run loads the installer itself",
    "--load": "kexec/run loads the installer itself",
    "-e": "kexec/run boots the installer itself, after its delay",
    "--exec": "kexec/run boots the installer itself, after its delay",
    "-f": "kexec/run boots the installer itself, after its delay",
    "--force": "kexec/run boots the installer itself, after its delay",
    "-u": "kexec/run unloads only what it loaded",
    "--unload": "kexec/run unloads only what it loaded",
    "-p": "a crash kernel is not the installer",
    "--load-panic": "a crash kernel is not the installer",
    "-S": "not a load",
    "--status": "not a load",
    "-h": "not a load",
    "--help": "not a load",
    "-v": "not a load",
    "--version": "not a load",
    "--load-preserve-context": "the installer does not return",
    "--load-jump-back-helper": "the installer does not return",
    "--load-live-update": "not the installer",
    "--exec-live-update": "not the installer",
    "--print-ckr-size": "not a load",
    "-?": "not a load",
}
# Short options that take no value, which getopt lets a caller bundle (-xy); a bundle may
# end in -t, whose value is the rest of the word or the next one (-dt bzImage).
BUNDLABLE = "fixylpueSscadhv"
# Options whose value may follow as the next word (getopt_long), so it stays with them.
TAKES_VALUE = frozenset(
    {
        "-t",
        "--type",
        "--mem-min",
        "--mem-max",
        "--entry",
        "--module",
        "--dtb",
        "--serial",
        "--serial-baud",
    }
)
# kexec-tools' long options: kexec/kexec.h KEXEC_OPTIONS, x86_64's and arm64's arch options
# (kexec/arch/*/include/arch/options.h) and their kernel file types' (bzImage, ELF,
# multiboot, Image). getopt_long takes any unambiguous prefix for the whole name (--app=X is
# --append=X): each --name is resolved against these before it is sorted, and one that is a
# prefix of several, or of none, is refused rather than guessed.
KEXEC_LONG_OPTIONS = frozenset(
    {
        *("help", "version", "force", "no-checks", "no-ifdown", "no-sync", "debug", "status"),
        *("load", "unload", "exec", "load-panic", "load-preserve-context"),
        *("load-jump-back-helper", "load-live-update", "exec-live-update", "print-ckr-size"),
        *("entry", "type", "mem-min", "mem-max", "reuseinitrd", "force-dtb", "dt-no-old-root"),
        *("hotplug", "no-cma", "noefi", "reuse-video-type", "entry-32bit"),
        *("kexec-file-syscall", "kexec-syscall", "kexec-syscall-auto"),
        *("reset-vga", "serial", "serial-baud", "console-vga", "console-serial"),
        *("elf32-core-headers", "elf64-core-headers", "pass-memmap-cmdline"),
        *("command-line", "append", "reuse-cmdline", "initrd", "ramdisk", "real-mode", "dtb"),
        *("args-linux", "args-elf", "args-none", "module"),
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ExtraFlags:
    """--kexec-extra-flags, sorted by where each flag goes."""

    load: tuple[str, ...] = ()  # loader options for `kexec --load`
    exec: tuple[str, ...] = ()  # for `kexec --exec`
    append: tuple[str, ...] = ()  # added to the installer's command line
    no_sync: bool = False
    syscall: SyscallChoice | None = None  # -s, -c or -a, when given
    reserve: int | None = None  # bytes, when --nixos-images-reserve-mib overrides the tarball's
    skip_driver_check: bool = False  # --nixos-images-skip-driver-check
    ssh_keys: tuple[str, ...] = ()  # --nixos-images-ssh-key=KEY|FILE, as --ssh-key
    no_keys_ok: bool = False  # --nixos-images-no-keys-ok, as --no-keys-ok
    skip_memory_check: bool = False  # --nixos-images-skip-memory-check

    @property
    def sync(self) -> bool:
        """Whether the old system's file systems are synced before the boot."""
        return not self.no_sync


def _bundle(word: str) -> list[str] | None:
    """A bundle of short options (-xy, -dt or -dtbzImage) as single ones and the -t value it
    holds, as getopt reads it; None when the word is not one."""
    if not re.fullmatch(r"-[A-Za-z][^-]\S*", word):
        return None
    out: list[str] = []
    for i, c in enumerate(word[1:], start=1):
        if c == "t":
            rest = word[i + 1 :]
            return [*out, "-t", *([rest] if rest else [])]
        if c not in BUNDLABLE:
            return None
        out.append(f"-{c}")
    return out


def _resolved(name: str) -> str:
    """A --name as kexec-tools' getopt_long reads it: itself, or the one option it is an
    abbreviation of. InputError when it stands for several, or for none kexec/run knows."""
    long = name[2:]
    if long in KEXEC_LONG_OPTIONS:
        return name
    matches = sorted(o for o in KEXEC_LONG_OPTIONS if o.startswith(long)) if long else []
    if len(matches) == 1:
        return f"--{matches[0]}"
    if matches:
        listed = ", ".join(f"--{m}" for m in matches)
        raise InputError(WHERE, f"{name} could mean {listed}: write the option in full")
    raise InputError(WHERE, f"{name} is not a kexec-tools option kexec/run knows")


def _cmdline_value(value: str) -> str:
    if _CONTROL.search(value):
        raise InputError(WHERE, f"--append={value!r}: a control character cannot be in it")
    if any(word.startswith("live.nixos.password=") for word in value.split()):
        # Never where ps on this host, /proc/cmdline and nixos-anywhere's log show it.
        raise InputError(
            WHERE,
            "live.nixos.password= would put a password on a kernel command line for anyone to"
            " read: give live.nixos.passwordHash= (mkpasswd) instead",
        )
    for word in value.split():
        name, _, given = word.partition("=")
        if name == layout.DEADMAN_PARAMETER:
            deadman_parameter(given, WHERE)  # the switch would only complain on the console
    return value


def deadman_parameter(value: str, where: str) -> str:
    """The installer's `nixos-images.deadman=` for --deadman's (or the token's) value."""
    try:
        layout.parse_deadman(value)
    except ValueError as e:
        raise InputError(where, f"{DEADMAN_TOKEN}: {e}") from None
    return f"{layout.DEADMAN_PARAMETER}={value}"


def _ours(name: str, eq: str, value: str) -> int | str | None:
    """A kexec/run token's value: MiB as bytes, a key (or its file), or None for a token
    without a value."""
    if name not in TOKENS:
        known = ", ".join(t if TOKENS[t] is None else f"{t}=..." for t in TOKENS)
        raise InputError(WHERE, f"{name} is not a kexec/run token (it knows {known})")
    if TOKENS[name] is None:
        if eq:
            raise InputError(WHERE, f"{name} takes no value")
        return None
    if name == SSH_KEY_TOKEN:
        if not value:
            raise InputError(WHERE, f"{name}= needs a key or the file of one")
        return value
    if not (value.isascii() and value.isdigit()):
        raise InputError(WHERE, f"{name}=N needs a number")
    return int(value) * MiB


def _read(word: str) -> tuple[str, str, str, str]:
    """A word as getopt_long reads it: the word (a long option's name written in full), its
    name, "=" or "", and its value."""
    if word == "--":
        raise InputError(WHERE, "-- cannot be passed on: what follows it is a file for kexec")
    if word == "-":
        raise InputError(WHERE, "'-': a file for kexec (the installer's are the tarball's)")
    name, eq, value = word.partition("=")
    if name.startswith("--") and not name.startswith(PREFIX):
        name = _resolved(name)
    return f"{name}{eq}{value}", name, eq, value


def split_extra_flags(words: Sequence[str]) -> ExtraFlags:  # noqa: C901, PLR0912, PLR0915 - a branch a kind
    """Sort the words of --kexec-extra-flags (see the module docstring); InputError names what
    cannot be passed on, and why."""
    load: list[str] = []
    exec_: list[str] = []
    append: list[str] = []
    no_sync = False
    syscall = None
    reserve = None
    skip_driver_check = False
    ssh_keys: list[str] = []
    no_keys_ok = False
    skip_memory_check = False
    queue = list(words)
    while queue:
        word = queue.pop(0)
        if not word:
            continue  # '' as a word: nothing
        # A bundle is split only where it is read as options: as a value (--append -xy) it
        # stays whole, as getopt leaves it.
        bundle = _bundle(word)
        if bundle is not None and len(bundle) > 1:
            queue[:0] = bundle
            continue
        word, name, eq, value = _read(word)
        if name == DEADMAN_TOKEN:
            if not eq:
                raise InputError(WHERE, f"{name} needs =MINUTES or =off, in one word")
            append.append(deadman_parameter(value, WHERE))
        elif name.startswith(PREFIX):
            got = _ours(name, eq, value)
            if got is None and name == NO_KEYS_TOKEN:
                no_keys_ok = True
            elif got is None and name == SKIP_MEMORY_TOKEN:
                skip_memory_check = True
            elif got is None:
                skip_driver_check = True
            elif isinstance(got, str):
                ssh_keys.append(got)
            else:
                reserve = got
        elif word in SYNC:
            no_sync = True
        elif word in EXEC_ONLY:
            exec_.append(word)
        elif word in EVERY_RUN:
            load.append(word)
            exec_.append(word)
        elif word in SYSCALLS:
            syscall = SYSCALLS[word]
        elif name in CMDLINE:
            if not eq:
                if not queue:
                    raise InputError(WHERE, f"{name} needs a value")
                value = queue.pop(0)
            append.append(_cmdline_value(value))
        elif name in REFUSED:
            raise InputError(WHERE, f"{name} cannot be passed on: {REFUSED[name]}")
        elif not word.startswith("-"):
            raise InputError(
                WHERE, f"{word!r}: a file for kexec (the installer's are the tarball's)"
            )
        elif name in TAKES_VALUE and not eq and queue:
            load += [word, queue.pop(0)]
        else:
            load.append(word)
    return ExtraFlags(
        tuple(load),
        tuple(exec_),
        tuple(append),
        no_sync,
        syscall,
        reserve,
        skip_driver_check,
        tuple(ssh_keys),
        no_keys_ok,
        skip_memory_check,
    )
