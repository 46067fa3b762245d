"""Time one full-BPTT training step (forward + backward) of the ALIF network against snnTorch RLeaky and nn.LSTM.

What is timed, per model and per depth (``--layers 1,2``: that many hidden layers of ``--hidden``
neurons), for one batch of ``--steps`` time steps (time-first ``[T, B, inputs]``, sparse binary
input with ``--density`` ones); the loss is the cross-entropy of the time-mean of the readout:

* ``compiled``: :class:`rc_snn.models.ALIFRSNN` through the compiled kernels
  (:func:`rc_snn.training.bptt.run_alif` with ``compiled=True``, the training default on a CPU);
* ``manual``: the same network through the hand-written torch BPTT loop (``compiled=False``);
* ``autograd``: the same network's own ``forward`` (the step functions), differentiated by autograd;
* ``rleaky``: ``nn.Linear`` applied per step (the snnTorch tutorial loop), then per layer
  ``snntorch.RLeaky(beta=0.95, all_to_all=True, linear_features=hidden)`` (a simpler neuron: one
  state, no adaptation), ``nn.Linear`` between layers and to the classes, per step;
* ``rleaky_hoisted``: the same, with the first ``nn.Linear`` applied once to the whole sequence
  (as ``ALIFRSNN`` does), so the ratio isolates the recurrent loop;
* ``lstm``: ``nn.LSTM(inputs, hidden, num_layers=layers)`` + ``nn.Linear`` on every ``h[t]``.

Each repetition is ``zero_grad(); loss = ...; loss.backward()``; the models are interleaved
(compiled, manual, ..., compiled, ...) after ``--warmup`` untimed rounds; the medians and the
ratios ``model / compiled`` (how many times faster the compiled engine is) are printed per depth.

The floor: what full BPTT cannot skip. The forward pass and the weight gradients are accumulates
(sums of weight rows at input events and spikes, a few percent of the entries), but the backward
pass multiplies a dense gradient by a matrix at every step of every sample: ``g_I W_rec`` in every
layer, ``g_I W_in`` into each layer below, ``g_co W_o``: ``B T ((2L - 1) H^2 + H C)``
multiply-adds. ``floor`` times those products as they would run at best, one BLAS GEMM per matrix
over all ``B T`` rows at once (the steps of a sample are sequential, so no engine can batch them
so), interleaved with the models.

    .venv/bin/python benchmarks/bench_layer.py --reps 5 --layers 1,2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numba
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rc_snn.models import ALIFRSNN  # noqa: E402
from rc_snn.training.bptt import run_alif  # noqa: E402

MODELS = ("compiled", "manual", "autograd", "rleaky", "rleaky_hoisted", "lstm", "floor")


def make_alif(n_in: int, hidden: int, layers: int, classes: int, engine: str):
    model = ALIFRSNN(n_in, [hidden] * layers, classes)

    def loss_fn(x, y):
        outputs = model(x)[0] if engine == "autograd" else run_alif(model, x, compiled=engine == "compiled")[0]
        return nn.functional.cross_entropy(outputs.mean(0), y)

    return model, loss_fn


def make_rleaky(n_in: int, hidden: int, layers: int, classes: int, hoisted: bool):
    import snntorch

    fc_in = nn.ModuleList([nn.Linear(n_in if l == 0 else hidden, hidden) for l in range(layers)])
    lifs = nn.ModuleList([snntorch.RLeaky(beta=0.95, all_to_all=True, linear_features=hidden) for _ in range(layers)])
    fc_out = nn.Linear(hidden, classes)
    model = nn.ModuleList([fc_in, lifs, fc_out])

    def loss_fn(x, y):
        states = [lif.init_rleaky() for lif in lifs]
        currents = fc_in[0](x) if hoisted else None
        outputs = []
        for t in range(x.shape[0]):
            spk = currents[t] if hoisted else fc_in[0](x[t])
            for l, lif in enumerate(lifs):
                spk, mem = lif(spk if l == 0 else fc_in[l](spk), *states[l])
                states[l] = (spk, mem)
            outputs.append(fc_out(spk))
        return nn.functional.cross_entropy(torch.stack(outputs).mean(0), y)

    return model, loss_fn


def make_lstm(n_in: int, hidden: int, layers: int, classes: int):
    lstm = nn.LSTM(n_in, hidden, num_layers=layers)
    readout = nn.Linear(hidden, classes)
    model = nn.ModuleList([lstm, readout])

    def loss_fn(x, y):
        hidden_seq, _ = lstm(x)
        return nn.functional.cross_entropy(readout(hidden_seq).mean(0), y)

    return model, loss_fn


def make_floor(hidden: int, layers: int, classes: int, rows: int):
    """The dense products of the backward pass, one GEMM per matrix over ``rows`` = B T rows (see above)."""
    g_hidden, g_out = torch.randn(rows, hidden), torch.randn(rows, classes)
    matrices = [torch.randn(hidden, hidden) for _ in range(2 * layers - 1)]
    w_out = torch.randn(classes, hidden)

    def loss_fn(x, y):
        for w in matrices:
            g_hidden @ w
        g_out @ w_out
        return torch.zeros((), requires_grad=True)

    return nn.Module(), loss_fn


def time_step(model: nn.Module, loss_fn, x, y) -> float:
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    loss = loss_fn(x, y)
    loss.backward()
    return time.perf_counter() - start


def measure(names, args, layers: int, x, y) -> dict:
    factories = {
        "compiled": lambda: make_alif(args.inputs, args.hidden, layers, args.classes, "compiled"),
        "manual": lambda: make_alif(args.inputs, args.hidden, layers, args.classes, "manual"),
        "autograd": lambda: make_alif(args.inputs, args.hidden, layers, args.classes, "autograd"),
        "rleaky": lambda: make_rleaky(args.inputs, args.hidden, layers, args.classes, hoisted=False),
        "rleaky_hoisted": lambda: make_rleaky(args.inputs, args.hidden, layers, args.classes, hoisted=True),
        "lstm": lambda: make_lstm(args.inputs, args.hidden, layers, args.classes),
        "floor": lambda: make_floor(args.hidden, layers, args.classes, args.batch * args.steps),
    }
    models = {name: factories[name]() for name in names}
    for _ in range(args.warmup):
        for model, loss_fn in models.values():
            time_step(model, loss_fn, x, y)
    times = {name: [] for name in models}
    for _ in range(args.reps):
        for name, (model, loss_fn) in models.items():
            times[name].append(time_step(model, loss_fn, x, y))
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per model (interleaved)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    parser.add_argument("--layers", default="1,2", help="comma-separated depths to time")
    parser.add_argument("--inputs", type=int, default=2 * 34 * 34)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--density", type=float, default=0.01, help="fraction of input entries that are 1")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    depths = [int(d) for d in args.layers.split(",") if d.strip()]
    if args.reps < 1 or args.warmup < 0 or not depths or min(depths) < 1:
        raise ValueError(f"expected --reps >= 1, --warmup >= 0 and --layers >= 1; got {args.reps}, {args.warmup},"
                         f" {args.layers!r}")
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise ValueError(f"expected --models from {list(MODELS)}; got {unknown}")

    torch.manual_seed(args.seed)
    x = (torch.rand(args.steps, args.batch, args.inputs) < args.density).float()
    y = torch.randint(args.classes, (args.batch,))
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), numba {numba.__version__}"
          f" ({numba.get_num_threads()} threads), {platform.processor() or platform.machine()}, cpus {os.cpu_count()}")
    print(f"inputs {args.inputs}, hidden {args.hidden}, batch {args.batch}, steps {args.steps}, "
          f"density {args.density} (measured {x.mean().item():.4f}), reps {args.reps}, warmup {args.warmup}")
    for layers in depths:
        times = measure(names, args, layers, x, y)
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(f"\n{layers} layer{'s' if layers > 1 else ''} of {args.hidden}")
        print("| model | median (ms) | min | max | model / compiled |")
        print("|---|---|---|---|---|")
        for name, values in times.items():
            ratio = f"{medians[name] / medians['compiled']:.2f}x" if "compiled" in medians else "-"
            print(f"| {name} | {medians[name] * 1e3:.1f} | {min(values) * 1e3:.1f} | {max(values) * 1e3:.1f} | {ratio} |")
        if "compiled" in medians and "floor" in medians:
            print(f"compiled / floor: {medians['compiled'] / medians['floor']:.1f}x")


if __name__ == "__main__":
    main()
