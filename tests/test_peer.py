"""The peer corpus (../shared/peer, DL4J's Keras-import test files): every file upgrades
and loads in Keras 3, or is refused for a reason no Keras 3 model could avoid; the 68
models with stored outputs reproduce them, from the full .h5 and from weights + config.
Figures: python tests/peer_corpus.py."""
import os

import pytest

import peer_corpus

# Refusals a user accepts: what no Keras 3 model can express.
HONEST = ("Keras 3 has no LocallyConnected",)
# Files Keras 3 itself will not build, whatever the translation: tf.keras allowed a Cropping3D to
# crop a 1x1x1 volume to nothing; Keras 3 raises "Values in `cropping` argument should be smaller".
KERAS3_REFUSES = {"cnn3d_20.h5", "cnn3d_22.h5"}

CASES = list(peer_corpus.cases()) if os.path.isdir(peer_corpus.PEER) else []


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.mark.skipif(not CASES, reason="../shared/peer is not beside this checkout")
@pytest.mark.parametrize("corpus,name,src,io,kw", CASES, ids=[f"{c[0]}/{c[1]}" for c in CASES])
def test_peer_file(corpus, name, src, io, kw, keras, tmp_path):
    import lstmtool

    verdict, detail = peer_corpus.judge_file(src, str(tmp_path), keras, lstmtool.upgrade, io, **kw)
    if io is not None:
        assert verdict == "match", detail
    elif name in KERAS3_REFUSES:
        assert verdict == "LOAD-FAIL" and "Cropping3D" in detail, (verdict, detail)
    elif verdict in ("REFUSED", "refused-ok"):
        assert any(h in detail for h in HONEST), detail
    else:
        assert verdict == "loads", (verdict, detail)
