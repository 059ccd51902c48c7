"""root-password: give root a fresh random passphrase at every boot of the installer."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import cli, process
from nixos_images.errors import HelperError, InputError
from nixos_images.fsutil import write_atomic
from nixos_images.layout import ROOT_PASSWORD_FILE

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
    debug: cli.DebugOption = False,
    version: cli.VersionOption = False,  # noqa: ARG001 - its callback prints and exits
) -> None:
    """Generate a passphrase, set it as root's password and save it for the login banner."""
    cli.setup(debug=debug)
    chosen = passphrase(load_wordlist(wordlist), words)
    writable_dir(output)
    # Saved first: a password set but never shown (a full disk, a kill in between) would lock
    # people at the console out. If setting it fails, the saved one is not left to mislead.
    write_atomic(output, chosen + "\n", mode=0o600)
    try:
        set_root_password(chosen, method, root)
    except BaseException:
        output.unlink(missing_ok=True)
        raise


def main() -> None:
    """Entry point of the root-password command."""
    cli.run(lambda: app(prog_name="root-password"), "root-password")
