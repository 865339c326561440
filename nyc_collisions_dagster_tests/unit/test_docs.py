"""The docs build strictly (every page in the nav, every link resolving), and the README's links
and package map are true."""

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text()


def test_mkdocs_builds_the_pages_strictly(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "index.html").is_file()


def test_every_relative_link_of_the_readme_resolves() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    relative = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    assert relative, "the README links into docs/"
    missing = [t for t in relative if not (REPO_ROOT / t).exists()]
    assert missing == []


def test_the_readme_opens_with_the_two_commands_and_stays_short() -> None:
    lines = README.splitlines()
    assert len(lines) <= 150
    opening = "\n".join(lines[:20])
    assert "make run" in opening and "make test" in opening


def test_the_package_map_names_every_folder_of_the_package() -> None:
    package = REPO_ROOT / "nyc_collisions_dagster"
    folders = {p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    unnamed = [folder for folder in sorted(folders) if f"{folder}/" not in README]
    assert unnamed == []
