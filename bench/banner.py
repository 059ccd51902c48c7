"""Benchmark installer-banner: start-up to a drawn screen, and one redraw.

Run: .venv/bin/python bench/banner.py  (figures go into docs/benchmarks.md)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import best_ms, helper, python_ms
from nixos_images.banner_screen import layout
from nixos_images.installer_banner import gather


def main() -> None:
    """Print the report."""
    bare = python_ms()
    with tempfile.TemporaryDirectory() as work:
        password = Path(work) / "pw"
        password.write_text("correct-horse-battery-staple\n")
        files = ["--password-file", str(password), "--onion-file", str(Path(work) / "none")]
        files += ["--ssh-dir", work, "--for-screen", "80x25"]
        start_ms = best_ms(helper("installer_banner", *files))
        json_ms = best_ms(helper("installer_banner", "--json", *files))
        runs = 50
        start = time.perf_counter()
        for _ in range(runs):
            layout(gather(password_file=password, ssh_dir=Path(work)), 80, 25)
        redraw_ms = (time.perf_counter() - start) * 1000 / runs
    print(f"bare python -c pass:               {bare:6.1f} ms")
    print(f"installer-banner, first screen:    {start_ms:6.1f} ms")
    print(f"installer-banner --json:           {json_ms:6.1f} ms")
    print(f"one poll + redraw (ip, QR, text):  {redraw_ms:6.1f} ms")


if __name__ == "__main__":
    main()
