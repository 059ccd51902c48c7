"""RevokedKeys as the old sshd read it: a list of keys, or a KRL (ssh-keygen -k's binary
list), which the host's own `ssh-keygen -Q` is asked about each key (collect.py)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from nixos_images import fsutil, process
from nixos_images.errors import HelperError
from nixos_images.kexec import authorized_keys
from nixos_images.kexec.key_files import KEY_FILE_LIMIT

if TYPE_CHECKING:
    from collections.abc import Iterable

# Keys asked about in one ssh-keygen call (its command line stays far below ARG_MAX).
BATCH = 100


def _path(path: str, root: Path) -> Path:
    """RevokedKeys' file under root; a path already under root (a test's stand-in root) is
    taken as it is."""
    return Path(path) if Path(path).is_relative_to(root) else root / path.lstrip("/")


def revoked_keys(
    path: str | None, root: Path, candidates: Iterable[tuple[str, str]] = ()
) -> frozenset[tuple[str, str]] | str:
    """RevokedKeys' keys as (type, base64), or why they cannot be known (then the keys it
    could revoke stay out: failing closed). A KRL is asked about each of candidates."""
    if path is None:
        return frozenset()
    try:
        text = fsutil.read_untrusted(_path(path, root), KEY_FILE_LIMIT)
    except (OSError, fsutil.UnsafeFileError) as e:
        # sshd refuses every key when it cannot read the list (auth.c): so does this.
        return fsutil.why(e)
    if text.startswith("SSHKRL"):
        return _krl_revoked(_path(path, root), list(dict.fromkeys(candidates)))
    revoked = set()
    for line in text.split("\n"):
        try:
            key = authorized_keys.parse_line(line)
        except authorized_keys.KeyLineError:
            return "a line that is not a key"
        if key is not None and (key.options or key.key_type.endswith("-cert-v01@openssh.com")):
            # sshd's sshkey_in_file reads bare keys (one with options stops it: every key
            # refused) and matches a certificate by its key, which this does not decode.
            return "a line that is not a bare key"
        if key is not None:
            revoked.add((key.key_type, key.blob))
    return frozenset(revoked)


def is_krl(path: str | None, root: Path) -> bool:
    """Whether RevokedKeys is a KRL, which may revoke certificates by serial or key id: no
    CA line can then say what it let in."""
    if path is None:
        return False
    try:
        return fsutil.read_untrusted(_path(path, root), KEY_FILE_LIMIT).startswith("SSHKRL")
    except (OSError, fsutil.UnsafeFileError):
        return False


_QUERIED = re.compile(r".*/k(\d+) \(.*\): (REVOKED|ok)")


def _krl_revoked(krl: Path, candidates: list[tuple[str, str]]) -> frozenset[tuple[str, str]] | str:
    """Which candidates the KRL revokes, by `ssh-keygen -Q -f KRL` on a file per key (it reads
    one key a file), BATCH at a time; a batch ssh-keygen cannot judge whole (a key type it
    cannot load ends its run) is asked key by key, and a key it cannot judge alone counts as
    revoked. Why not at all, when ssh-keygen cannot be run or read the list."""
    readable = _query(krl, [])
    if isinstance(readable, str):
        return readable
    revoked: set[tuple[str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="nixos-images-krl-") as tmp:
        files = []
        for i, (key_type, blob) in enumerate(candidates):
            canonical = "ssh-rsa" if key_type in authorized_keys.RSA_ALIASES else key_type
            (Path(tmp) / f"k{i}").write_text(f"{canonical} {blob} k{i}\n")
            files.append(str(Path(tmp) / f"k{i}"))
        for start in range(0, len(candidates), BATCH):
            indices = list(range(start, min(start + BATCH, len(candidates))))
            verdicts = _query(krl, [files[i] for i in indices])
            if isinstance(verdicts, str):
                return verdicts
            for n, i in enumerate(indices):
                verdict = verdicts.get(n)
                if verdict is None and len(indices) > 1:
                    alone = _query(krl, [files[i]])
                    verdict = alone.get(0) if isinstance(alone, dict) else None
                if verdict is not False:  # revoked, or not judged: out either way
                    revoked.add(candidates[i])
    return frozenset(revoked)


def _query(krl: Path, files: list[str]) -> dict[int, bool] | str:
    """ssh-keygen -Q's verdicts, by position in files (True: revoked); the ones it did not
    reach are missing. Without files, whether it reads the list at all (-l). Why not, when
    it cannot be run or (without files) cannot read the list."""
    argv = ["ssh-keygen", "-Q", *([] if files else ["-l"]), "-f", str(krl), *files]
    try:
        done = process.run(argv, call=process.Call.KEYGEN_QUERY, check=False)
    except (HelperError, OSError) as e:
        return f"a key revocation list that ssh-keygen could not read ({e})"
    position = {Path(f).name: n for n, f in enumerate(files)}
    verdicts = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        found = _QUERIED.fullmatch(line.strip())
        if found and f"k{found.group(1)}" in position:
            verdicts[position[f"k{found.group(1)}"]] = found.group(2) == "REVOKED"
    if not files and done.returncode != 0:  # -l: the list alone, read and printed
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit code {done.returncode}"
        return f"a key revocation list that ssh-keygen could not read ({reason})"
    return verdicts
