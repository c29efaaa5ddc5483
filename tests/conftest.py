import glob
import os
import subprocess
import sys

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 (measured: on an
# AMD EPYC without it, Keras 3 cannot run a channels_first Conv1D/Conv2D at all: "Conv2D only
# supports NHWC on the CPU"). The judging Keras must run the models on any CI machine; set
# before any test imports TensorFlow, and inherited by the tests' subprocesses.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
REALWORLD = os.path.join(os.path.dirname(ROOT), "shared", "realworld")
MODELS = ["lstm_gru", "seq_simple", "bidir", "stacked", "nested", "convlstm"]


def fixture_files(flavour=None, full_only=False):
    """(path, model name) for every committed fixture model file."""
    out = []
    for fl in ([flavour] if flavour else ["keras3", "tfkeras"]):
        for path in sorted(glob.glob(os.path.join(FIXTURES, fl, "*"))):
            if path.endswith(".npz"):
                continue
            weights_only = path.endswith((".weights.h5", ".wonly.h5"))
            if full_only and weights_only:
                continue
            out.append(path)
    return out


def model_name(path):
    return os.path.basename(path).split(".")[0]


def expected(path):
    return np.load(os.path.join(os.path.dirname(path), model_name(path) + ".expected.npz"))


def fid(path):
    return os.path.relpath(path, FIXTURES)


def run_cli(*args):
    """Drive the CLI through click's CliRunner; stdout and stderr kept apart."""
    from lstmtool.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run_subprocess(*args, **kw):
    return subprocess.run([sys.executable, "-m", "lstmtool", *args], capture_output=True, text=True, **kw)


@pytest.fixture
def realworld():
    if not os.path.isdir(REALWORLD):
        pytest.skip("../shared/realworld is not beside this checkout")
    return REALWORLD
