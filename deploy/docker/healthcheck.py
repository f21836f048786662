"""Container healthchecks of docker-compose.yml, with nothing but the Python standard library.

    python healthcheck.py URL                 # healthy when GET URL answers 2xx within 3 s
    python healthcheck.py --process MODULE    # healthy when `python -m MODULE` runs here

Exit status 0 is healthy, 1 is not (what Docker expects); the reason goes to stdout, which
`docker inspect` shows.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path


def url_answers(url: str, timeout_s: float = 3.0) -> tuple[bool, str]:
    """True when GET ``url`` returns a 2xx status within ``timeout_s`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return 200 <= response.status < 300, f"{url}: HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def module_runs(module: str, proc: Path = Path("/proc")) -> tuple[bool, str]:
    """True when a process of this container runs ``python -m module``."""
    wanted = f"-m\0{module}\0".encode()
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            if wanted in cmdline.read_bytes():  # arguments end in NUL
                return True, f"python -m {module} runs as pid {cmdline.parent.name}"
        except OSError:  # the process ended while we looked
            continue
    return False, f"no python -m {module} process"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="healthcheck.py", description="Container healthcheck: a URL answers, or a module runs."
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("url", nargs="?", help="an http:// URL that must answer 2xx")
    target.add_argument("--process", metavar="MODULE", help="a `python -m MODULE` that must run")
    args = parser.parse_args(argv)
    healthy, reason = module_runs(args.process) if args.process else url_answers(args.url)
    print(reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
