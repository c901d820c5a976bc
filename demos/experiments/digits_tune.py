"""One digits flow from ``demos/digits.py``'s pieces, timed: a line of the digits tuning log.

Same split, classifier and Frechet distance as the demo (:func:`npflow.metrics.frechet_distance`
of the classifier's features, samples against the 360 held-out images), fewer samples so that a
scratch run stays short: prints (and appends to ``--log``) one JSON line with the training's
wall and CPU seconds, the Frechet distance of ``--n-samples`` unguided samples with the EMA
weights and with the raw weights, the held-out bits/dim of the first ``--n-nll`` held-out images
(``--nll exact`` or ``hutchinson:K``), and, for a conditional fit (``label_dropout`` in the
options), the share of 200 guided samples classified as asked at w = 1, 2, 3.

    PYTHONPATH=. nice -n 5 python demos/experiments/digits_tune.py NAME '{"arch": "unet", \\
        "channels": 16, "multipliers": [1, 2], "groups": 8, "steps": 300, "batch_size": 64, \\
        "lr": 2e-3, "warmup_steps": 30, "solver_steps": 10, "ema_decay": 0.99}' \\
        --nll hutchinson:1 --n-nll 100 --n-samples 300
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import digits as demo  # noqa: E402
from npflow import Flow, datasets, metrics  # noqa: E402
from npflow.classifier import Classifier  # noqa: E402

BASE = dict(steps=2000, batch_size=128, lr=1e-3, warmup_steps=100, ema_decay=0.999,
            time_sampling="uniform", dequantize=True, val_fraction=0.0, solver_steps=20, seed=0)


def frechet(flow, clf, n, Xte, seed=5):
    samples = demo.quantize(flow.sample(n, rng=np.random.default_rng(seed)))
    return metrics.frechet_distance(clf.features(samples), clf.features(Xte))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("name")
    p.add_argument("options", help="JSON: Flow options over BASE")
    p.add_argument("--nll", default="none", help="none, exact or hutchinson:K")
    p.add_argument("--n-nll", type=int, default=360)
    p.add_argument("--n-samples", type=int, default=1000)
    p.add_argument("--log", default=None, help="a .jsonl file the result line is appended to")
    args = p.parse_args(argv)
    X, y = datasets.load_digits()
    X = X.astype(np.float64)
    train, test = demo.split(X, 0)
    Xtr, ytr, Xte = X[train], y[train], X[test]
    clf = Classifier(demo.D, 10, hidden=(256,), rng=np.random.default_rng(0))
    clf.fit(Xtr, ytr, np.random.default_rng(0), epochs=40)
    options = dict(BASE, **json.loads(args.options))
    if options.get("arch") == "unet":
        options["image_shape"] = (8, 8)
    for key in ("multipliers", "hidden"):
        if key in options:
            options[key] = tuple(options[key])
    conditional = "label_dropout" in options
    start, cpu = time.perf_counter(), time.process_time()
    flow = Flow(**options).fit(Xtr, ytr if conditional else None)
    res = dict(name=args.name, options=json.loads(args.options),
               train_wall=round(time.perf_counter() - start, 1),
               train_cpu=round(time.process_time() - cpu, 1), n_samples=args.n_samples)
    start, cpu = time.perf_counter(), time.process_time()
    res["fd"] = round(frechet(flow, clf, args.n_samples, Xte), 2)
    res["sample_wall"] = round(time.perf_counter() - start, 1)
    res["sample_cpu"] = round(time.process_time() - cpu, 1)
    raw = copy.copy(flow)
    raw._set_fitted(flow.checkpoint_, ema=False)
    res["fd_raw_weights"] = round(frechet(raw, clf, args.n_samples, Xte), 2)
    print(json.dumps(res), flush=True)
    if conditional:
        labels = np.repeat(np.arange(10), 20)
        for w in (1.0, 2.0, 3.0):
            x = flow.sample(labels.size, rng=np.random.default_rng(6), y=labels, guidance=w)
            res[f"share_w{w:g}"] = round(float(np.mean(clf.predict(demo.quantize(x)) == labels)), 3)
    if args.nll != "none":
        if args.nll.startswith("hutchinson"):
            flow.divergence, flow.n_probes = "hutchinson", int(args.nll.split(":")[1])
        else:
            flow.divergence = "exact"
        start, cpu = time.perf_counter(), time.process_time()
        log_p = flow.log_prob(Xte[:args.n_nll], rng=np.random.default_rng(1))
        res.update(bits_per_dim=round(demo.bits(log_p), 4), nll=f"{args.nll} on {args.n_nll}",
                   nll_wall=round(time.perf_counter() - start, 1),
                   nll_cpu=round(time.process_time() - cpu, 1))
    print(json.dumps(res))
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
