"""Make (once) a venv per old Keras, in which `generate.py` runs.

    python tests/oldkeras/venvs.py                 # all of VERSIONS
    python tests/oldkeras/venvs.py 1.2.2 2.3.1     # some

What works on Python 3.11 (measured): Theano 1.0.5, numpy 1.23.5, scipy < 1.11,
h5py 3.8.0. Old Keras imports `collections.Iterable` and friends, which Python 3.10
removed: a sitecustomize.py in each venv puts the collections.abc names back.
"""
import os
import subprocess
import sys
import sysconfig

VERSIONS = ("1.2.2", "2.0.8", "2.1.6", "2.2.4", "2.3.1")
ROOT = os.environ.get("LSTMTOOL_OLDKERAS", os.path.expanduser("~/.cache/lstmtool-oldkeras"))
PINS = ["numpy==1.23.5", "scipy<1.11", "h5py==3.8.0", "theano==1.0.5", "pyyaml", "six"]
SITECUSTOMIZE = """\
import collections, collections.abc
for _n in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable", "Hashable", "Set",
           "MutableSet", "MutableSequence"):
    if not hasattr(collections, _n):
        setattr(collections, _n, getattr(collections.abc, _n))
"""
# Theano: no BLAS library to link (NumPy's is used), fast graph optimisation; the
# generator disables the Cython scan that does not build on Python 3.11.
ENV = {"KERAS_BACKEND": "theano", "THEANO_FLAGS": "optimizer=fast_compile,blas.ldflags="}


def python_of(version):
    return os.path.join(ROOT, f"keras-{version}", "bin", "python")


def make(version):
    where = os.path.join(ROOT, f"keras-{version}")
    if os.path.exists(python_of(version)):
        return where
    subprocess.run([sys.executable, "-m", "venv", where], check=True)
    subprocess.run([python_of(version), "-m", "pip", "install", "-q", *PINS, f"keras=={version}"], check=True)
    purelib = subprocess.run([python_of(version), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, "sitecustomize.py"), "w") as fh:
        fh.write(SITECUSTOMIZE)
    return where


if __name__ == "__main__":
    assert sysconfig.get_python_version() == "3.11", "the recipe was measured on Python 3.11"
    for v in sys.argv[1:] or VERSIONS:
        print(v, make(v))
