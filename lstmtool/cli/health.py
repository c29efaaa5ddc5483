"""`lstmtool health`: parse, call health.diagnose per file, render text / JSON / a page."""
from __future__ import annotations

import json

import click

from . import cli


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="The diagnosis as JSON (a list for several files).")
@click.option("--html", "page", type=click.Path(dir_okay=False), metavar="REPORT.html",
              help="Also write a self-contained report page (no network; figures inline).")
@click.option("--strict", is_flag=True, help="Exit 1 on any warning too (for CI gates).")
@click.option("--force", is_flag=True, help="Let --html replace an existing file.")
def health(models, as_json, page, strict, force):
    """Diagnose recurrent weights from the file alone: NaN/inf, spectral norms of U against
    the exploding/vanishing bounds, forget-gate memory T = 1/(1-f), saturated gates, dead
    units, drift from orthogonality, per-gate statistics. Exit 1 on an error finding (NaN,
    incomplete cells), or on any warning with --strict. Thresholds: docs/health.md.

    \b
    Example:
        lstmtool health model.h5
        lstmtool health model.keras --json --strict
        lstmtool health before.h5 after.keras --html report.html
    """
    import os

    from ..errors import LstmtoolError, UsageError
    from ..health.diagnose import diagnose

    if page:
        from ..surgery.edit import refuse_special

        refuse_special(page)
        if not page.endswith((".html", ".htm")):
            raise UsageError(f"{page}: the report is an HTML page: name it .html")
        if os.path.lexists(page) and not force:
            raise UsageError(f"{page}: already exists; pass --force to replace it")
    docs = [diagnose(m, pictures=bool(page)) for m in models]
    if page:
        from ..core.files import atomic_output
        from ..health.page import render

        with atomic_output(page) as fh:
            fh.write(render(docs).encode("utf-8"))
    if as_json:
        shown = [{k: v for k, v in d.items()} for d in docs]
        for d in shown:
            for c in d["cells"]:
                c.pop("pictures", None)
        click.echo(json.dumps(shown[0] if len(shown) == 1 else shown, indent=2))
    else:
        _text(docs)
    if page and not as_json:
        click.echo(f"wrote {page}")
    errors = sum(d["counts"]["error"] for d in docs)
    warnings = sum(d["counts"]["warning"] for d in docs)
    if errors or (strict and warnings):
        raise LstmtoolError(f"{errors} error(s), {warnings} warning(s)" + (" (--strict)" if strict and not errors else ""))


def _text(docs):
    from .textout import echo_lines

    for d in docs:
        lines = [f"{d['file']}: {d['verdict']} ({d['counts']['error']} errors, {d['counts']['warning']} warnings, "
                 f"{d['counts']['info']} notes; {len(d['cells'])} cells)"]
        for c in d["cells"]:
            spec = (c.get("spectral") or {}).get("gates", {})
            sg = ", ".join(f"{g} {v['sigma_gamma']:.3g}" for g, v in spec.items())
            mem = c.get("memory")
            med = mem["percentiles"][50] if mem else None
            lines.append(f"  {c['path']}  {c['class']}  units={c['units']}"
                         + (f"  sigma*gamma: {sg}" if sg else "")
                         + (f"  median T={med:.3g}" if med is not None else "")
                         + (f"  ({c['skipped']})" if c.get("skipped") else ""))
        for f in d["findings"]:
            units = f["units"]
            shown = "" if units is None else f" units {','.join(map(str, units[:10]))}{'...' if len(units) > 10 else ''}"
            lines.append(f"  {f['severity']:<7} {f['check']:<24} {f['layer']}{':' + f['gate'] if f['gate'] else ''}"
                         f"{shown}: {f['why']}" + (f"  fix: {f['fix']}" if f["fix"] else ""))
        echo_lines(lines)
