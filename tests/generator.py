"""Random recurrent models, built by real Keras 3 and tf-keras, saved in every format their
Keras writes, and the invariants lstmtool must keep on each (issue 9).

    python tests/generator.py --models 70 --seed 5     # by hand: prints figures
    (CI runs a few through tests/test_generator.py)

Models: LSTM / GRU (both reset_after) / SimpleRNN (tanh or relu), Bidirectional with every
merge mode and explicit backward layers, RNN(cell), RNN(StackedRNNCells) of 2-3 mixed cells,
go_backwards, use_bias / unit_forget_bias False, TimeDistributed(Dense), models nested in
models, odd layer names. Invariants, per file:
  1. inspect finds every cell, with unique paths
  2. every cell's fused W / U / b (from lstmtool's gate views) equals a Keras cell's arrays exactly
  3. export -> import into a copy with every gate zeroed restores every gate bit for bit
  4. set-forget-bias 1.0 -o: every LSTM forget bias is 1.0 in Keras, every other weight unchanged
  5. verify passes (full models)
  6. torch / onnx export: refused with a reason (exit 2) or written (never an internal error)
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NAMES = ["rec", "r_1", "Layer.Two", "x-y", "cell_9", "forward_thing", "deep", "ab12", "z"]


class Builder:
    def __init__(self, k, rng):
        self.k, self.rng, self.used = k, rng, set()

    def name(self):
        base = NAMES[int(self.rng.integers(0, len(NAMES)))]
        n, k = base, 1
        while n in self.used:
            k += 1
            n = f"{base}{k}"
        self.used.add(n)
        return n

    def units(self):
        return int(self.rng.integers(1, 5))

    def cell_kwargs(self, family):
        kw = {"use_bias": bool(self.rng.random() > 0.2)}
        if family == "LSTM":
            kw["unit_forget_bias"] = bool(self.rng.random() > 0.3)
        if family == "GRU":
            kw["reset_after"] = bool(self.rng.random() > 0.4)
        if family == "SimpleRNN":
            kw["activation"] = "relu" if self.rng.random() < 0.3 else "tanh"
        return kw

    def family(self):
        return ["LSTM", "GRU", "SimpleRNN"][int(self.rng.integers(0, 3))]

    def layer(self, seq, name=None):
        """A recurrent layer (returns sequences if `seq`)."""
        L, r = self.k.layers, self.rng.random()
        fam = self.family()
        back = bool(self.rng.random() < 0.2)
        if r < 0.35:
            return getattr(L, fam)(self.units(), return_sequences=seq, go_backwards=back,
                                   name=name or self.name(), **self.cell_kwargs(fam))
        if r < 0.6:
            u = self.units()
            inner = getattr(L, fam)(u, return_sequences=seq, **self.cell_kwargs(fam))
            kw = {}
            if self.rng.random() < 0.25:
                fam2 = self.family()
                kw["backward_layer"] = getattr(L, fam2)(u, return_sequences=seq, go_backwards=True,
                                                        **self.cell_kwargs(fam2))
            mode = ["concat", "sum", "ave", "mul"][int(self.rng.integers(0, 4))]
            return L.Bidirectional(inner, merge_mode=mode, name=name or self.name(), **kw)
        if r < 0.85:
            n = int(self.rng.integers(2, 4))
            cells = []
            for _ in range(n):
                fam = self.family()
                cells.append(getattr(L, fam + "Cell")(self.units(), **self.cell_kwargs(fam)))
            return L.RNN(L.StackedRNNCells(cells), return_sequences=seq, go_backwards=back, name=name or self.name())
        fam = self.family()
        return L.RNN(getattr(L, fam + "Cell")(self.units(), **self.cell_kwargs(fam)), return_sequences=seq,
                     name=name or self.name())

    def model(self):
        k, L = self.k, self.k.layers
        x = k.Input((5, int(self.rng.integers(2, 5))))
        h = x
        for i in range(int(self.rng.integers(1, 4))):
            if self.rng.random() < 0.25:  # a nested model holding one recurrent layer
                inner_in = k.Input(tuple(h.shape[1:]))
                inner = k.Model(inner_in, self.layer(True)(inner_in), name=self.name())
                h = inner(h)
            else:
                h = self.layer(True)(h)
            if self.rng.random() < 0.2:
                h = L.TimeDistributed(L.Dense(3), name=self.name())(h)
        return k.Model(x, self.layer(False)(h), name="m")


def keras_cells(k, model):
    """Every recurrent cell object in a Keras model (any nesting)."""
    out = []

    def visit(layer):
        kind = type(layer).__name__
        if kind in ("Functional", "Model", "Sequential"):
            for sub in layer.layers:
                visit(sub)
        elif kind == "Bidirectional":
            visit(layer.forward_layer)
            visit(layer.backward_layer)
        elif kind == "TimeDistributed":
            visit(layer.layer)
        elif hasattr(layer, "cell"):
            cell = layer.cell
            out.extend(cell.cells if type(cell).__name__ == "StackedRNNCells" else [cell])
    visit(model)
    return out


def save_all(k, model, stem, which):
    paths = []
    if which == "keras3":
        for ext in (".keras", ".h5", ".weights.h5"):
            model.save_weights(stem + ext) if ext == ".weights.h5" else model.save(stem + ext)
            paths.append(stem + ext)
    else:
        model.save(stem + ".h5")
        model.save_weights(stem + ".wonly.h5")
        paths += [stem + ".h5", stem + ".wonly.h5"]
    return paths


def fused(cell):
    return [np.concatenate([getattr(cell, p)[g].numpy() for g in cell.gates], axis=-1)
            for p in ("W", "U", "b") if getattr(cell, p)]


def check_file(path, kcells, which, work):
    """[problem] for one saved file."""
    import lstmtool
    from conftest import run_cli

    problems = []
    want = [[np.asarray(w) for w in c.weights] for c in kcells]
    with lstmtool.load(path) as m:
        paths = [c.path for c in m.cells]
        if len(m.cells) != len(kcells) or m.incomplete:
            return [f"inspect found {len(m.cells)} cells (+{len(m.incomplete)} incomplete), Keras has {len(kcells)}"]
        if len(set(paths)) != len(paths):
            problems.append(f"duplicate paths {paths}")
        left = list(range(len(want)))
        for c in m.cells:
            got = fused(c)
            match = next((i for i in left if len(want[i]) == len(got)
                          and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(want[i], got))), None)
            if match is None:
                problems.append(f"{c.path}: no Keras cell holds these arrays")
            else:
                left.remove(match)
        original = {c.path: fused(c) for c in m.cells}
    ext = os.path.splitext(path)[1] if not path.endswith(".weights.h5") else ".weights.h5"
    exp, zero, back = os.path.join(work, "exp"), os.path.join(work, "zero" + ext), os.path.join(work, "back" + ext)
    r = run_cli("export", path, "-o", exp)
    if r.exit_code:
        return problems + [f"export: {r.stderr.strip()}"]
    current = path
    for p_ in paths:
        for part in ("W", "U", "b"):
            r = run_cli("set", current, f"{p_}:{part}_*", "0", "-o", zero, "--force")
            if r.exit_code == 0:
                current = zero
    r = run_cli("import", current, exp, "-o", back, "--force")
    if r.exit_code:
        problems.append(f"import: {r.stderr.strip()}")
    else:
        with lstmtool.load(back) as m:
            for c in m.cells:
                if not all(np.array_equal(a, b) for a, b in zip(fused(c), original[c.path])):
                    problems.append(f"{c.path}: export -> import did not restore it")
    if not path.endswith((".weights.h5", ".wonly.h5")):
        edited = os.path.join(work, "edited" + ext)
        r = run_cli("set-forget-bias", "1", path, "-o", edited, "--force")
        if r.exit_code not in (0, 1) or "internal error" in r.stderr:
            problems.append(f"set-forget-bias: {r.stderr.strip()}")
        elif r.exit_code == 0:
            problems += keras_forget_check(edited, path, which)
        from lstmtool.reading.verify import verify_file

        try:
            result = verify_file(path)
            if not result["ok"]:
                problems.append("verify: " + json.dumps([(x["path"], x["max_abs_diff"]) for x in result["layers"]]))
        except Exception as e:
            if "cannot load" not in str(e):  # Keras refusing its own file is Keras' answer, not ours
                problems.append(f"verify: {type(e).__name__}: {e}")
    for layout in ("torch", "onnx"):
        r = run_cli("export", path, "-o", os.path.join(work, layout), "--layout", layout, "--force")
        if r.exit_code not in (0, 2) or "internal error" in r.stderr:
            problems.append(f"export {layout}: {r.stderr.strip()}")
    return problems


def keras_forget_check(edited, original, which):
    """The edited file in its own Keras: LSTM forget biases 1.0, everything else unchanged."""
    k = keras_module(which)
    try:
        a = k.models.load_model(original, compile=False)
    except Exception:  # its own Keras cannot load the file it wrote (tf-keras, mixed Bidirectional
        return []      # halves): nothing to compare against; not lstmtool's to answer for
    b = k.models.load_model(edited, compile=False)
    problems = []
    for ca, cb in zip(keras_cells(k, a), keras_cells(k, b)):
        wa, wb = [np.asarray(w) for w in ca.weights], [np.asarray(w) for w in cb.weights]
        if type(ca).__name__ == "LSTMCell" and len(wa) == 3:
            u = wa[1].shape[0]
            expect = wa[2].copy()
            expect[u:2 * u] = 1.0
            wa[2] = expect
        if not all(np.array_equal(x, y) for x, y in zip(wa, wb)):
            problems.append(f"set-forget-bias: Keras sees other values in {ca.name}")
    return problems


def keras_module(which):
    if which == "keras3":
        import keras

        return keras
    import tf_keras

    return tf_keras


def run(models, seed, verbose=False):
    cases, failures = 0, []
    for i in range(models):
        for which in ("keras3", "tf_keras"):
            k = keras_module(which)
            rng = np.random.default_rng([seed, i, which == "keras3"])
            model = Builder(k, rng).model()
            kcells = keras_cells(k, model)
            with tempfile.TemporaryDirectory() as tmp:
                for path in save_all(k, model, os.path.join(tmp, f"g{i}"), which):
                    cases += 1
                    work = tempfile.mkdtemp(dir=tmp)
                    try:
                        problems = check_file(path, kcells, which, work)
                    except Exception as e:
                        problems = [f"check crashed: {type(e).__name__}: {e}"]
                    if problems:
                        failures.append((f"seed {seed} model {i} {which} {os.path.basename(path)}", problems))
                        if verbose:
                            print(failures[-1], flush=True)
    return cases, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=70)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    cases, failures = run(args.models, args.seed, args.verbose)
    print(f"{args.models} models x both Kerases: {cases} model x format cases, {len(failures)} with problems")
    for name, problems in failures:
        print(f"  {name}: {problems[:3]}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
