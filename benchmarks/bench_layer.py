"""Time one training step (forward + backward) of the ALIF layer against snnTorch RLeaky and nn.LSTM.

What is timed, per model, for one batch of ``--steps`` time steps (time-first ``[T, B, inputs]``,
sparse binary input with ``--density`` ones):

* ``ours``: :class:`rc_snn.models.ALIFRSNN` with one ALIF layer and its leaky readout
  (``forward`` = one input matmul for all steps, then the step loop), loss = cross-entropy of the
  time-mean of the readout ``m[t]``;
* ``rleaky``: ``nn.Linear(inputs, hidden)`` applied per step (the snnTorch tutorial loop), then
  ``snntorch.RLeaky(beta=0.95, all_to_all=True, linear_features=hidden)`` and ``nn.Linear(hidden,
  classes)`` per step, loss = cross-entropy of the time-mean of the readout;
* ``rleaky_hoisted``: the same, but the input ``nn.Linear`` applied once to the whole sequence
  (the same trick ``ours`` uses), so the ratio isolates the recurrent loop;
* ``lstm``: ``nn.LSTM(inputs, hidden)`` + ``nn.Linear(hidden, classes)`` on every ``h[t]``, same loss.

Each repetition is ``zero_grad(); loss = ...; loss.backward()``; repetitions of the models are
interleaved (ours, rleaky, rleaky_hoisted, lstm, ours, ...) after ``--warmup`` untimed rounds, and
the medians are printed with the ratios ``ours/rleaky``, ``ours/rleaky_hoisted`` and ``ours/lstm``.

    .venv/bin/python benchmarks/bench_layer.py --reps 10
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rc_snn.models import ALIFRSNN  # noqa: E402


def make_ours(n_in: int, hidden: int, classes: int):
    model = ALIFRSNN(n_in, hidden, classes)

    def loss_fn(x, y):
        outputs, _ = model(x)
        return nn.functional.cross_entropy(outputs.mean(0), y)

    return model, loss_fn


def make_rleaky(n_in: int, hidden: int, classes: int, hoisted: bool):
    import snntorch

    fc_in = nn.Linear(n_in, hidden)
    lif = snntorch.RLeaky(beta=0.95, all_to_all=True, linear_features=hidden)
    fc_out = nn.Linear(hidden, classes)
    model = nn.ModuleList([fc_in, lif, fc_out])

    def loss_fn(x, y):
        spk, mem = lif.init_rleaky()
        currents = fc_in(x) if hoisted else None
        outputs = []
        for t in range(x.shape[0]):
            current = currents[t] if hoisted else fc_in(x[t])
            spk, mem = lif(current, spk, mem)
            outputs.append(fc_out(spk))
        return nn.functional.cross_entropy(torch.stack(outputs).mean(0), y)

    return model, loss_fn


def make_lstm(n_in: int, hidden: int, classes: int):
    lstm = nn.LSTM(n_in, hidden)
    readout = nn.Linear(hidden, classes)
    model = nn.ModuleList([lstm, readout])

    def loss_fn(x, y):
        hidden_seq, _ = lstm(x)
        return nn.functional.cross_entropy(readout(hidden_seq).mean(0), y)

    return model, loss_fn


def time_step(model: nn.Module, loss_fn, x, y) -> float:
    start = time.perf_counter()
    model.zero_grad(set_to_none=True)
    loss = loss_fn(x, y)
    loss.backward()
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions per model (interleaved)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds before timing")
    parser.add_argument("--inputs", type=int, default=2 * 34 * 34)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--density", type=float, default=0.01, help="fraction of input entries that are 1")
    parser.add_argument("--models", default="ours,rleaky,rleaky_hoisted,lstm",
                        help="comma-separated subset of ours,rleaky,rleaky_hoisted,lstm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.reps < 1 or args.warmup < 0:
        raise ValueError(f"expected --reps >= 1 and --warmup >= 0; got {args.reps}, {args.warmup}")

    torch.manual_seed(args.seed)
    factories = {
        "ours": lambda: make_ours(args.inputs, args.hidden, args.classes),
        "rleaky": lambda: make_rleaky(args.inputs, args.hidden, args.classes, hoisted=False),
        "rleaky_hoisted": lambda: make_rleaky(args.inputs, args.hidden, args.classes, hoisted=True),
        "lstm": lambda: make_lstm(args.inputs, args.hidden, args.classes),
    }
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise ValueError(f"expected --models from {sorted(factories)}; got {unknown}")
    models = {name: factories[name]() for name in names}

    x = (torch.rand(args.steps, args.batch, args.inputs) < args.density).float()
    y = torch.randint(args.classes, (args.batch,))

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}, "
          f"cpus {os.cpu_count()}")
    print(f"inputs {args.inputs}, hidden {args.hidden}, batch {args.batch}, steps {args.steps}, "
          f"density {args.density} (measured {x.mean().item():.4f}), reps {args.reps}, warmup {args.warmup}")
    for _ in range(args.warmup):
        for name, (model, loss_fn) in models.items():
            time_step(model, loss_fn, x, y)
    times = {name: [] for name in models}
    for _ in range(args.reps):
        for name, (model, loss_fn) in models.items():
            times[name].append(time_step(model, loss_fn, x, y))

    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:>15}: median {medians[name] * 1e3:8.1f} ms  (min {min(values) * 1e3:.1f}, "
              f"max {max(values) * 1e3:.1f})")
    if "ours" in medians:
        for name in names:
            if name != "ours":
                print(f"ours/{name}: {medians['ours'] / medians[name]:.3f}")


if __name__ == "__main__":
    main()
