"""Fixtures of the system tier: the make targets, run as a user types them."""

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
_MAKE_ERROR = re.compile(r"make(\[\d+\])?: \*\*\* ")
# Set when the suite itself runs under make (make test): a user's shell has none of them.
_MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


class MakeRun:
    """What one `make` command printed, in the order it printed it, and its exit status."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.returncode = done.returncode
        self.lines = done.stdout.splitlines()

    @property
    def own_lines(self) -> list[str]:
        """The lines without make's own closing `make: *** [...] Error N`."""
        return [line for line in self.lines if not _MAKE_ERROR.match(line)]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def run_make() -> Callable[..., MakeRun]:
    """``run_make("run", "MONTH=2024-02", env=...)``: make in the repository, on the suite's
    virtualenv, which it must not reinstall; stdout and stderr interleaved as a terminal shows."""
    venv = Path(sys.executable).parent.parent

    def run(*arguments: str, env: dict[str, str], timeout: float = 300) -> MakeRun:
        env = {name: value for name, value in env.items() if name not in _MAKE_VARIABLES}
        done = subprocess.run(
            ["make", "--no-print-directory", "-C", str(REPO_ROOT), *arguments, f"VENV={venv}",
             "-o", f"{venv}/bin/.installed"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        )  # fmt: skip
        return MakeRun(done)

    return run
