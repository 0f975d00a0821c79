"""Fail when a commit adds more than a size limit of new file content (default 20 MB).

The repository's history was mostly superseded campaign states (issue 26): the rule now is at
most one campaign-state commit per push of work, and no single commit adding more than 20 MB.
CI runs this on the commits after ``--since`` (default: the commit that introduced the rule),
so published history is never rewritten.

Usage::

    python scripts/check_commit_sizes.py [--since COMMIT] [--limit-mb 20] [--repo .]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

#: The last commit before the rule: older commits are history, not checked.
RULE_SINCE = "2c1ebce"


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def _has_commit(repo: str, commit: str) -> bool:
    return subprocess.run(["git", "-C", repo, "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


def added_bytes(repo: str, commit: str) -> int:
    """Bytes of the files a commit adds or changes (their new blobs; a merge counts against its first parent)."""
    parents = _git(repo, "rev-list", "--parents", "-n", "1", commit).split()[1:]
    base = parents[:1] or ["--root"]
    out = _git(repo, "diff-tree", "-r", "--no-commit-id", "--diff-filter=AMT", *base, commit)
    blobs = [line.split()[3] for line in out.splitlines() if line.startswith(":")]
    if not blobs:
        return 0
    sizes = subprocess.run(["git", "-C", repo, "cat-file", "--batch-check=%(objectsize)"], input="\n".join(blobs),
                           check=True, capture_output=True, text=True).stdout
    return sum(int(size) for size in sizes.split())


def oversized(repo: str, since: str | None, limit: int) -> list[tuple[str, int]]:
    """(commit, bytes) of the commits after ``since`` that add more than ``limit`` bytes."""
    # A shallow clone may lack ``since``: then every commit it has is checked.
    span = f"{since}..HEAD" if since and _has_commit(repo, since) else "HEAD"
    commits = _git(repo, "rev-list", span).split()
    return [(c, n) for c in commits if (n := added_bytes(repo, c)) > limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", default=RULE_SINCE, help=f"check commits after this one (default {RULE_SINCE})")
    parser.add_argument("--limit-mb", type=float, default=20.0, help="largest addition per commit, MB (default 20)")
    parser.add_argument("--repo", default=".", help="repository (default: the current folder)")
    args = parser.parse_args(argv)
    limit = int(args.limit_mb * 1e6)
    found = oversized(args.repo, args.since, limit)
    for commit, size in found:
        print(f"commit {commit[:10]} adds {size / 1e6:.1f} MB (limit {args.limit_mb:g} MB): keep campaign "
              "states to one commit per push and superseded states out of the tree", file=sys.stderr)
    if not found:
        print(f"every commit after {args.since} adds at most {args.limit_mb:g} MB")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
