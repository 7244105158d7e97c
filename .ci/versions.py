"""Fail unless the installed versions are those a constraints file pins (`make test-lowest`).

pip keeps a package that is already installed when it satisfies the requirement, so
a virtualenv made earlier could hold other versions than the file says; this says
which versions the suite ran on, and stops when they are not the ones meant.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path


def main(path: str) -> int:
    wrong = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, wanted = line.split("==")
        got = version(name)
        print(f"{name} {got}")
        if got != wanted:
            wrong.append(f"{name} is {got}, not {wanted}")
    for text in wrong:
        print(text, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
