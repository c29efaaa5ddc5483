"""A few random models from tests/generator.py in CI (both Kerases, every format each
writes). A larger run is by hand: `python tests/generator.py --models 70`."""
import generator


def test_random_models_keep_every_invariant():
    cases, failures = generator.run(models=3, seed=2026)
    assert cases >= 15
    assert failures == []
