"""root-password: give root a fresh random passphrase at every boot of the installer, unless
a credential given at boot sets root's password instead.

Boot credentials, first found wins:
- the systemd credential `passwd.hashed-password.root` (a crypt(3) hash; from the kernel
  command line's `systemd.set_credential_binary=` or a VM's SMBIOS type 11 strings, imported
  by the unit with ImportCredential=);
- nixpkgs' `live.nixos.passwordHash=HASH` on the kernel command line, and
- `live.nixos.password=PASSWORD` (both read as nixpkgs' netboot.nix reads them: the field
  after the first "=", up to the next).
The hash or password is set here on every image (netboot.nix sets them too, where it is
imported and root has no password yet). A hostile or damaged value is one line on the console
and the random passphrase is set instead: the console keeps a way in.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import cli, fsutil, password_file, process
from nixos_images.errors import HelperError, InputError
from nixos_images.fsutil import write_atomic
from nixos_images.layout import ROOT_PASSWORD_FILE
from nixos_images.password_file import BootCredential, Saved

if TYPE_CHECKING:
    from collections.abc import Sequence

WORDLIST = Path(__file__).parent / "data" / "eff_large_wordlist.txt"
WORDLIST_SIZE = 7776  # 6^5: five dice per word, log2(7776) = 12.9 bits of entropy per word
DEFAULT_FILE = ROOT_PASSWORD_FILE


def load_wordlist(path: Path) -> list[str]:
    """The words of a 7776-word list: one word a line, or diceware's "11111<TAB>word" lines."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise InputError(path, "word list not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read the word list: {e}") from None
    words = [line.split()[-1] for line in lines if line.strip()]
    if len(set(words)) != WORDLIST_SIZE or len(words) != WORDLIST_SIZE:
        raise InputError(
            path,
            f"a word list needs {WORDLIST_SIZE} distinct words, this one has {len(set(words))}",
        )
    return words


def passphrase(words: Sequence[str], count: int, separator: str = "-") -> str:
    """`count` words drawn with the secrets module, joined by separator."""
    return separator.join(secrets.choice(words) for _ in range(count))


def set_root_password(password: str, method: str, root: Path | None = None) -> None:
    """Set root's password with chpasswd, the password on its stdin, never on a command line.

    Naming the hash method makes chpasswd hash it itself instead of going through PAM, so the
    result is the same on every system (and works in a chroot without PAM).
    """
    argv = ["chpasswd", "--crypt-method", method] + (["--root", str(root)] if root else [])
    process.run(argv, call=process.Call.CHPASSWD, check=True, stdin=f"root:{password}\n".encode())


CREDENTIAL_NAME = "passwd.hashed-password.root"
CMDLINE_KEYS = {
    "live.nixos.passwordHash": BootCredential.CMDLINE_HASH,
    "live.nixos.password": BootCredential.CMDLINE_PASSWORD,
}
# What chpasswd takes on its "root:VALUE" line, nothing that ends the line. A hash in
# crypt(3)'s "$id$[params$]salt$hash" form only: a plain word there ("hunter2", or "!" and "*",
# which lock the account) would match no password, and the console would have none.
_HASH = re.compile(r"\$[0-9a-z]+\$[./0-9A-Za-z$,=+-]{1,500}")
_PASSWORD = re.compile(r"[ -~]{1,512}")


@dataclass(frozen=True)
class Given:
    """A password or hash a credential gave at boot."""

    credential: BootCredential
    value: str

    @property
    def hashed(self) -> bool:
        """Whether value is a crypt(3) hash (chpasswd --encrypted), not a password."""
        return self.credential is not BootCredential.CMDLINE_PASSWORD


def from_cmdline(cmdline: str) -> Given | None:
    """live.nixos.passwordHash= or live.nixos.password= on a kernel command line, the value
    as netboot.nix's `set -- $(IFS==; echo $o)` reads it ($2: up to the next "=")."""
    for word in cmdline.split():
        key, eq, rest = word.partition("=")
        if eq and key in CMDLINE_KEYS:
            return Given(CMDLINE_KEYS[key], rest.split("=")[0])
    return None


def from_credentials(directory: Path | None) -> Given | None:
    """The passwd.hashed-password.root credential, if the unit was given one."""
    if directory is None:
        return None
    try:
        text = fsutil.read_untrusted(directory / CREDENTIAL_NAME, 4096)
    except FileNotFoundError:
        return None
    except (OSError, fsutil.UnsafeFileError) as e:
        raise InputError(directory / CREDENTIAL_NAME, fsutil.why(e)) from None
    return Given(BootCredential.SYSTEMD_HASH, text.rstrip("\r\n"))


def check(given: Given) -> Given:
    """given, if chpasswd can take it as it is; else InputError naming the credential."""
    pattern = _HASH if given.hashed else _PASSWORD
    if not pattern.fullmatch(given.value):
        what = "a crypt(3) hash" if given.hashed else "a password"
        raise InputError(
            given.credential.value, f"not {what} chpasswd can set (empty, or odd characters)"
        )
    return given


def set_root_hash(hashed: str, root: Path | None = None) -> None:
    """Set root's password hash as given (chpasswd --encrypted), on stdin."""
    argv = ["chpasswd", "--encrypted"] + (["--root", str(root)] if root else [])
    process.run(argv, call=process.Call.CHPASSWD, check=True, stdin=f"root:{hashed}\n".encode())


def writable_dir(path: Path) -> None:
    """Fail before anything changes if the password file cannot be written."""
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise HelperError(f"{parent}: not writable, cannot save the password for the banner")


app = cli.new_app(__doc__ or "")


@app.command()
def root_password(
    words: Annotated[
        int, typer.Option("--words", min=3, max=16, help="Words in the passphrase.")
    ] = 4,
    output: Annotated[
        Path, typer.Option("--output", help="File (root-only) where the banner reads the password.")
    ] = DEFAULT_FILE,
    wordlist: Annotated[Path, typer.Option("--wordlist", help="A 7776-word list.")] = WORDLIST,
    method: Annotated[
        str, typer.Option("--crypt-method", help="Hash method passed to chpasswd.")
    ] = "YESCRYPT",
    root: Annotated[
        Path | None, typer.Option("--root", help="Apply in this root directory (chpasswd --root).")
    ] = None,
    cmdline: Annotated[
        Path,
        typer.Option("--cmdline", help="The kernel command line, for live.nixos.password*=."),
    ] = Path("/proc/cmdline"),
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Generate a passphrase, set it as root's password and save it for the login banner;
    or set the one a credential gave at boot, and save which credential it was."""
    cli.setup(debug=debug)
    writable_dir(output)
    given = _given(cmdline)
    if given is not None:
        if given.hashed:
            set_root_hash(given.value, root)
        else:
            set_root_password(given.value, method, root)
        write_atomic(output, password_file.render(Saved(credential=given.credential)), mode=0o600)
        return
    chosen = passphrase(load_wordlist(wordlist), words)
    # Saved first: a password set but never shown (a full disk, a kill in between) would lock
    # people at the console out. If setting it fails, the saved one is not left to mislead.
    write_atomic(output, password_file.render(Saved(password=chosen)), mode=0o600)
    try:
        set_root_password(chosen, method, root)
    except BaseException:
        output.unlink(missing_ok=True)
        raise


def _given(cmdline: Path) -> Given | None:
    """The boot credential to set, if any; a damaged one is a line on stderr (the console and
    the journal) and None, so the random passphrase keeps the console open."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    try:
        text = cmdline.read_text(errors="replace") if cmdline.is_file() else ""
        given = from_credentials(Path(credentials) if credentials else None) or from_cmdline(text)
        return check(given) if given is not None else None
    except (InputError, OSError) as e:
        sys.stderr.write(f"root-password: {e}; setting a random passphrase instead\n")
        return None


def main() -> None:
    """Entry point of the root-password command."""
    cli.run(lambda: app(prog_name="root-password"), "root-password")
