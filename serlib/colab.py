"""Where the course is published, for Colab: the install line, the "Open in Colab" links, one setting.

In Colab every notebook gets a fresh runtime without serlib, so its first cell installs serlib from
the repository the notebooks were published in, and its title carries an "Open in Colab" badge that
points at that repository. Both must name the repository wherever the course is published, so there
is exactly one setting, ``REPO_URL`` below. Each notebook carries a copy of it (a fresh Colab
runtime cannot import serlib before installing it), and one command rewrites every copy after a
fork or a move (``tests/test_course.py`` checks that every notebook names only ``REPO_URL``)::

    python -m serlib.colab --repo https://github.com/OWNER/NAME

It rewrites this file, the notebooks (``.ipynb`` and their ``.py`` pairs), the README and ``docs/``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from serlib.errors import UserError

REPO_URL = "https://github.com/serlib/serlib"
"""The GitHub repository the course is published in: what Colab installs and opens (one setting)."""

BRANCH = "main"
"""The branch the "Open in Colab" badges open."""

REPOSITORY_PATTERN = re.compile(r"^https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")
"""A GitHub repository's address: Colab opens notebooks from GitHub only."""

LINK_PATTERN = re.compile(
    r"git\+(https://github\.com/[\w.-]+/[\w.-]+?)(?:\.git)?[\\\"'@\s]"
    r"|colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/"
)
"""An install line (``git+https://github.com/OWNER/NAME``, ended by a quote, an escaped quote as in
a saved .ipynb, ``@`` or a space) or a Colab badge link in a file."""

REWRITTEN = (
    "serlib/colab.py",
    "notebooks/*.ipynb",
    "notebooks/*.py",
    "notebooks/solutions/*.ipynb",
    "notebooks/solutions/*.py",
    "README.md",
    "docs/*.md",
)
"""The files of a checkout that name the repository, relative to the checkout."""


def in_colab() -> bool:
    """True inside Google Colab (where the setup cell installs serlib and enables widgets)."""
    return "google.colab" in sys.modules


def enable_colab_widgets() -> None:
    """Turn on Colab's widget manager, without which ipywidgets (the explorers) do not render."""
    from google.colab import output  # only exists inside Colab

    output.enable_custom_widget_manager()


def repository_path(url: str = REPO_URL) -> str:
    """``https://github.com/OWNER/NAME`` -> ``OWNER/NAME``, refusing anything that is not GitHub."""
    match = REPOSITORY_PATTERN.match(url.strip())
    if not match:
        raise UserError(
            f"repository {url!r} is not a GitHub address; Colab opens notebooks from GitHub only, "
            "so give --repo https://github.com/OWNER/NAME"
        )
    return f"{match.group(1)}/{match.group(2)}"


def colab_url(notebook: str, notebooks: Sequence[str] | None = None) -> str:
    """The "Open in Colab" link of a course notebook (``notebooks``: the names it may be)."""
    stem = notebook.removesuffix(".ipynb")
    if notebooks is not None and stem not in notebooks:
        raise UserError(f"unknown notebook {notebook!r}; the course has {', '.join(notebooks)}")
    return (
        f"https://colab.research.google.com/github/{repository_path()}/blob/{BRANCH}/"
        f"notebooks/{stem}.ipynb"
    )


def install_requirement(url: str = REPO_URL) -> str:
    """What the Colab setup cell gives pip: ``serlib @ git+<the repository>``."""
    return f"serlib @ git+{url}"


def repository_links(text: str) -> set[str]:
    """Every repository a file's install lines and Colab badges name, as ``OWNER/NAME``."""
    found = set()
    for install, badge in LINK_PATTERN.findall(text):
        found.add(repository_path(install) if install else badge)
    return found


def point_at_repository(url: str, checkout: str | Path) -> list[Path]:
    """Rewrite every copy of ``REPO_URL`` in a checkout (and the badges) to name ``url``.

    Returns the files that changed. Run it from a checkout after publishing the course elsewhere,
    then commit: Colab installs from, and opens notebooks in, the new repository.
    """
    old, new = repository_path(REPO_URL), repository_path(url)
    checkout = Path(checkout)
    if not (checkout / "serlib" / "colab.py").is_file():
        raise UserError(
            f"{checkout} is not a serlib checkout (no serlib/colab.py); pass --checkout"
        )
    changed = []
    for pattern in REWRITTEN:
        for path in sorted(checkout.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            updated = text.replace(f"https://github.com/{old}", f"https://github.com/{new}")
            updated = updated.replace(f"/github/{old}/blob/", f"/github/{new}/blob/")
            if updated != text:
                path.write_text(updated, encoding="utf-8")
                changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m serlib.colab --repo URL``: point the course's Colab cells and badges at URL."""
    parser = argparse.ArgumentParser(prog="python -m serlib.colab", description=main.__doc__)
    parser.add_argument("--repo", required=True, help="https://github.com/OWNER/NAME")
    parser.add_argument(
        "--checkout", default=str(Path(__file__).resolve().parents[1]), help="the checkout to edit"
    )
    args = parser.parse_args(argv)
    try:
        changed = point_at_repository(args.repo, args.checkout)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in changed:
        print(f"rewrote {path}")
    print(f"{len(changed)} files now name {args.repo}; commit them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
