"""sshd_config read without sshd: what sshd_config.py falls back to when no sshd can be asked
(`sshd -T` failed, or none was found). Include is followed; Match blocks that test the user
or their groups are applied for that user as sshd applies them; a Match block that sets a
deciding keyword but tests what this cannot know (the connection, an unknown criterion)
makes the user's settings unknown: every key of theirs stays out (fail closed).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence

# How deep Include may nest (servconf.c's SERVCONF_MAX_DEPTH): deeper, sshd refuses the whole
# config ("Too many recursive configuration includes"), and so does this. And how many files
# it reads in all: three Includes of itself would be 3^16 files.
INCLUDE_DEPTH = 16
INCLUDE_FILES = 256
# match.c copies each pattern of a list into 1024 bytes, and gives up at this length.
MAX_SUBPATTERN = 1023
# Old names sshd still reads as the keyword it now has (servconf.c's keywords table).
ALIASES = {"pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms"}

# Match criteria whose outcome depends on where a login came from or arrived.
CONNECTION_CRITERIA = frozenset({"address", "host", "localaddress", "localport", "rdomain"})
# Every criterion a Match line may test (sshd_config(5)).
MATCH_CRITERIA = CONNECTION_CRITERIA | {"all", "user", "group", "canonical", "final"}
# A config line's keyword (maybe quoted, maybe followed by =) and the rest.
_LINE = re.compile(r'\s*"?([A-Za-z]+)"?\s*=?\s*(.*)')


class UnjudgedError(Exception):
    """What sshd made of the config cannot be told: a Match block that may apply sets a
    setting that decides, or the config is one sshd refuses (quotes, Include depth)."""


class _BlockKeywordError(Exception):
    """A deciding keyword in a Match block that cannot be judged (the keyword)."""


def split_words(text: str) -> list[str]:
    """A config line's arguments as sshd's argv_split (misc.c) splits them: blanks (space,
    tab) between words, quotes (" or ') around blanks, a backslash before a quote, a
    backslash or (unquoted) a blank for that character, a word starting with # ends the
    line. UnjudgedError for a quote left open (sshd refuses the config)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            escaped = text[i + 1] if i + 1 < n else ""
            if c == "\\" and escaped and (escaped in "'\"\\" or (not quote and escaped == " ")):
                word.append(escaped)
                i += 1
            elif not quote and c in " \t":
                break
            elif not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                word.append(c)
            i += 1
        if quote:
            raise UnjudgedError("a quote left open, which sshd refuses")
        words.append("".join(word))
    return words


@dataclass
class _Budget:
    """How many more files Include may read (INCLUDE_FILES in all)."""

    files: int = INCLUDE_FILES


def _included(patterns: list[str], root: Path, depth: int, budget: _Budget) -> Iterator[str]:
    """The texts of the files an Include line names (relative to /etc/ssh, globs sorted, as
    sshd reads them); one that cannot be read is left out. UnjudgedError past sshd's depth,
    or past INCLUDE_FILES files."""
    if depth >= INCLUDE_DEPTH:
        raise UnjudgedError("Include nests deeper than sshd allows")
    for pattern in patterns:
        base = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
        # glob(3) as sshd has it: ** is *, nothing recursive; a pattern naming no file is
        # nothing (`Include /` is a directory).
        # glob(3)'s backslash escapes, which Python's glob does not know: \c is c itself.
        unescaped = re.sub(r"\\(.)", lambda m: glob.escape(m.group(1)), base)
        pattern_path = str(root / unescaped.lstrip("/"))
        for name in sorted(glob.glob(pattern_path, recursive=False)):  # noqa: PTH207 - not Path.glob: its ** recurses
            budget.files -= 1
            if budget.files < 0:
                raise UnjudgedError(f"Include names more than {INCLUDE_FILES} files")
            try:
                yield Path(name).read_text(errors="replace")
            except (OSError, ValueError):
                continue


def matches(pattern: str, name: str) -> bool:
    """Whether name matches pattern as sshd's match_pattern has it: * and ? wildcards only."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name) is not None


def pattern_list(name: str, patterns: str) -> int:
    """Sshd's match_pattern_list: -1 when a negated pattern (!p) matches, 1 when another
    one does, else 0."""
    found = 0
    for pattern in patterns.split(","):
        if len(pattern) >= MAX_SUBPATTERN:
            return 0  # match.c's sub[1024]: sshd gives up on the whole list
        if pattern.startswith("!"):
            if matches(pattern[1:], name):
                return -1
        elif matches(pattern, name):
            found = 1
    return found


def _group_match(groups: Sequence[str], patterns: str) -> bool:
    """Sshd's Match Group: one of the groups matches, and none is negated."""
    results = [pattern_list(group, patterns) for group in groups]
    return -1 not in results and 1 in results


def _criteria(words: list[str]) -> list[tuple[str, str | None]]:
    """A Match line's (criterion, argument) pairs, its words split once more at = (sshd's
    strdelim takes `User=root`); an argument missing at the end is None."""
    words = [part for word in words for part in word.split("=") if part]
    pairs: list[tuple[str, str | None]] = []
    while words:
        criterion = words.pop(0).lower()
        argument = None if criterion == "all" or not words else words.pop(0)
        pairs.append((criterion, argument))
    return pairs


@dataclass(frozen=True)
class Login:
    """Whom the settings are for: a user and their groups' names."""

    user: str
    groups: tuple[str, ...] = ()


def applies(words: list[str], login: Login) -> bool | None:
    """Whether a Match line's block applies to login's sessions; None when that depends on
    what this cannot know (the connection, a criterion it does not know)."""
    outcome: bool | None = True
    for criterion, argument in _criteria(words):
        if criterion == "all":
            continue
        if argument is None:
            return None
        if criterion == "user":
            hit: bool | None = pattern_list(login.user, argument) == 1
        elif criterion == "group":
            hit = _group_match(login.groups, argument)
        else:
            hit = None
        if hit is False:
            return False
        if hit is None:
            outcome = None
    return outcome


def _lines(text: str) -> Iterator[tuple[str, list[str]]]:
    """A config text's (keyword in lower case, its words) lines, comments and blanks left
    out; a line ends at a NUL (sshd reads C strings) and its CR (a CRLF file)."""
    for raw in text.split("\n"):
        cut = raw.split("\0", 1)[0].rstrip("\r")
        line = _LINE.match(cut)
        if line is not None and not cut.strip().startswith("#"):
            key = line.group(1).lower()
            yield ALIASES.get(key, key), split_words(line.group(2))


@dataclass
class _Values:
    """The values read so far: global ones (the first of each keyword counts) and those of
    the Match blocks that apply (the first counts, and overrides the global one)."""

    keywords: Collection[str]
    lists: Collection[str]
    found: dict[str, str] = field(default_factory=dict)
    matched: dict[str, str] = field(default_factory=dict)
    budget: _Budget = field(default_factory=_Budget)

    def add(self, key: str, value: str, *, in_match: bool) -> None:
        target = self.matched if in_match else self.found
        if key in self.lists:
            target[key] = f"{target[key]} {value}" if key in target else value
        elif key in self.keywords and key not in target:
            target[key] = value


def _read(
    text: str,
    root: Path,
    login: Login,
    values: _Values,
    depth: int,
    block: bool | str | None,
) -> None:
    """One file's lines. block: "global" outside Match, else whether the Match block the lines
    are in applies (None: unknown). A Match line starts a block that lasts to the next one or
    the end of the file: an Include's file has blocks of its own, as in sshd, which apply
    only where the Include itself did."""
    outer = block
    for key, words in _lines(text):
        if key == "match":
            block = applies(words, login)
            if block is True and outer is None:
                block = None
            continue
        if block is False:
            continue
        if key == "include":
            for included in _included(words, root, depth, values.budget):
                _read(included, root, login, values, depth + 1, block)
            continue
        if block is None:
            if key in values.keywords:
                raise _BlockKeywordError(key)
            continue
        values.add(key, " ".join(words), in_match=block is True)


def parse_config(
    text: str,
    root: Path,
    login: Login,
    keywords: Collection[str],
    lists: Collection[str] = (),
) -> dict[str, str]:
    """sshd_config's values (keyword lower case -> value as written) for login's sessions:
    the first global value of each keyword, replaced by the first of a Match block that
    applies (for lists: the lines add up); Include followed. UnjudgedError when a Match
    block this cannot judge sets one of keywords."""
    values = _Values(keywords, lists)
    try:
        _read(text, root, login, values, 0, "global")
    except _BlockKeywordError as e:
        criteria = sorted(match_criteria(text, root) - {"user", "group", "all"})
        tested = ", ".join(criteria) or "what this cannot read"
        msg = f"a Match block that tests {tested} sets {e}, and no sshd could be asked"
        raise UnjudgedError(msg) from None
    return values.found | values.matched


def _walk(
    text: str, root: Path, depth: int = 0, budget: _Budget | None = None, *, in_match: bool = False
) -> Iterator[tuple[str, list[str], bool]]:
    """Every (keyword, words, whether in a Match block) of the config and the files it
    includes, in order, whatever the blocks test. UnjudgedError for a config sshd refuses
    (a quote left open, Include too deep)."""
    budget = budget or _Budget()
    for key, words in _lines(text):
        if key == "match":
            in_match = True
        if key == "include":
            for included in _included(words, root, depth, budget):
                yield from _walk(included, root, depth + 1, budget, in_match=in_match)
        else:
            yield key, words, in_match


def match_criteria(text: str, root: Path) -> frozenset[str]:
    """The criteria (lower case) that sshd_config's Match lines test, Includes followed. Read
    loosely, on purpose: any word of a Match line that names a criterion counts, however it
    is written (`Address=X`, `"Address" X`, `User = root Address X`); a user named like a
    criterion (not `deploy-host`: words, not parts of them) only makes the result stricter.
    UnjudgedError for a config sshd refuses (a quote left open, Include too deep)."""
    return (
        frozenset(
            part.lower()
            for key, words, _ in _walk(text, root)
            if key == "match"
            for word in words
            for part in word.split("=")
        )
        & MATCH_CRITERIA
    )


# Keywords whose "none" sshd takes for unset only outside Match blocks (servconf.c clears
# them once, for the global values): in a Match block it is a file named none (a principals
# file or revocation list that is not there: refused, not unset; ForceCommand's and
# ChrootDirectory's are cleared after a Match too, real sshd shows); and
# AuthorizedPrincipalsCommand's "none" wherever it is written. sshd -T prints "none" for
# both, so the config's own text tells them apart.
LITERAL_NONE_IN_MATCH = frozenset({"authorizedprincipalsfile", "revokedkeys"})
LITERAL_NONE = frozenset({"authorizedprincipalscommand"})


def literal_nones(text: str, root: Path) -> frozenset[str]:
    """The keywords the config sets to a "none" that sshd does not read as unset (in a Match
    block, or anywhere for LITERAL_NONE), Includes followed. UnjudgedError as for
    match_criteria."""
    return frozenset(
        key
        for key, words, in_match in _walk(text, root)
        if [w.lower() for w in words] == ["none"]
        and (key in LITERAL_NONE or (in_match and key in LITERAL_NONE_IN_MATCH))
    )


# Keywords whose words are paths, which sshd -T prints joined by blanks: a path holding a
# blank of its own cannot be told from two paths there.
PATH_LISTS = frozenset({"authorizedkeysfile", "authorizedprincipalsfile"})


def blank_paths(text: str, root: Path) -> frozenset[str]:
    """The PATH_LISTS keywords the config gives a path with a blank in (quoted, escaped)."""
    return frozenset(
        key
        for key, words, _ in _walk(text, root)
        if key in PATH_LISTS and any(" " in w or "\t" in w for w in words)
    )


def config_text(root: Path, config: str) -> str:
    """The daemon's config file's text ("" when it cannot be read): a path already under root
    (a test's stand-in root) is taken as it is."""
    path = Path(config) if Path(config).is_relative_to(root) else root / config.lstrip("/")
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def connection_criteria(root: Path, config: str = "/etc/ssh/sshd_config") -> frozenset[str]:
    """The connection-dependent Match criteria of the old host's sshd_config (the daemon's own
    -f file where it was started with one); UnjudgedError when they cannot be known."""
    return match_criteria(config_text(root, config), root) & CONNECTION_CRITERIA
