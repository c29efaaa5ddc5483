"""Layer-path matching and "did you mean" suggestions."""
import fnmatch


def suggest(name, candidates) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.4)
    if close:
        return "; did you mean " + ", ".join(repr(c) for c in close) + "?"
    if candidates:
        return "; cells are: " + ", ".join(list(candidates)[:8])
    return ""


def matches(path: str, patterns) -> bool:
    """True if `path` (or a parent of it, e.g. a Bidirectional) matches any glob pattern."""
    if not patterns:
        return True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pat) for pat in patterns for p in prefixes)


def natural_key(text: str):
    """`ckpt-19-1.94.h5` before `ckpt-100-...`: digit runs compare as numbers."""
    import re

    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


def expand_models(patterns) -> list:
    """Model paths from arguments: existing paths as given, glob patterns expanded
    (naturally sorted). A pattern that matches nothing is a usage error."""
    import glob
    import os

    from ..errors import UsageError

    import re

    out = []
    for p in patterns:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", p):  # a URL: its ? starts a query, never a glob
            out.append(p)
            continue
        if os.path.exists(p) or not any(ch in p for ch in "*?["):
            out.append(p)
            continue
        found = sorted(glob.glob(p), key=natural_key)
        if not found:
            raise UsageError(f"{p}: no file matches this pattern")
        out += found
    return out


def check_patterns_matched(patterns, paths, what="layer", given_as="--layer"):
    """A layer pattern that matches nothing is a usage error, not silence. `given_as`
    names how the user gave it (--layer, or LAYER for a positional argument)."""
    from ..errors import UsageError

    for pat in patterns:
        if not any(matches(p, [pat]) for p in paths):
            raise UsageError(f"no {what} matches {given_as} {pat!r}{suggest(pat, list(dict.fromkeys(paths)))}")
