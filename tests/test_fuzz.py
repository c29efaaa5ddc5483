"""The fuzz harness (tests/fuzz/) in CI: every mutator once as a regular test, and a small
campaign in its own process under an address-space limit. A larger campaign runs by hand:
`python tests/fuzz/run.py --count 1200`."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from fuzz import mutants
from fuzz.run import run_case, sources


@pytest.mark.parametrize("mutator", mutants.ALL, ids=lambda m: m.__name__)
def test_each_kind_of_damage_gets_a_clean_answer(tmp_path, mutator):
    """A reproducer per kind of damage found by the campaign (internal errors, runaway
    recursion, non-UTF-8 configs, zip bombs, groups/strings/scalars where weights belong...)."""
    from lstmtool.cli import cli

    runner = CliRunner()
    for k, src in enumerate(sources()):
        mutant = str(tmp_path / f"{k}_{os.path.basename(src)}")
        try:
            mutator(src, mutant, np.random.default_rng([3, k]))
        except Exception:
            continue  # this damage does not apply to this kind of file
        work = tempfile.mkdtemp(dir=tmp_path)
        assert run_case(runner, cli, mutant, work, check_rss=False) == [], (mutator.__name__, src)


def test_small_campaign_in_its_own_process():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fuzz", "run.py"), "--count", "150",
                        "--seed", "11"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "0 mutants with problems" in r.stdout
