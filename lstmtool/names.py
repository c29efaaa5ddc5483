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
