"""The snnTorch tutorial's recurrent network, trained with rank coding, exported and run in Lava.

    python docs/example_snntorch.py                                  # nmnist-sim (embedded)
    python docs/example_snntorch.py --data-dir ../shared/data/nmnist-small --epochs 30

Everything here is snnTorch's idiom (``nn.Sequential`` of ``nn.Linear`` and ``snn.RLeaky`` with
``init_hidden=True``, ``snntorch.utils.reset``) plus three rc-snn calls: the runner that stops each
batch at its last decision and the rank-coded loss (``rc_snn.plugin``), and the export to the
network file that Lava runs (``rc_snn.pipeline.snntorch_export``). The output is a leaky
integrator (``reset_mechanism="none"``) whose membrane is read as class scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import snntorch as snn
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from deploy.energy import energy_per_inference, resolve_preset
from deploy.ir import save_network
from deploy.simulate import evaluate
from rc_snn.data import load_dataset
from rc_snn.pipeline.snntorch_export import export_snntorch, record_snntorch
from rc_snn.plugin import accuracy_rank, ce_rank_loss, run_to_last_decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="a local N-MNIST folder (default: the embedded nmnist-sim)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--decision-threshold", type=float, default=0.9)
    parser.add_argument("--lava-samples", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("runs/snntorch-example"))
    args = parser.parse_args()
    torch.manual_seed(0)

    options = dict(bin_ms=5.0, first_saccade=True)
    if args.data_dir:
        train_set, info = load_dataset("nmnist", "train", data_dir=args.data_dir, folds=5, fold=0, **options)
        test_set, _ = load_dataset("nmnist", "val", data_dir=args.data_dir, folds=5, fold=0, **options)
    else:
        train_set, info = load_dataset("nmnist-sim", "train", **options)
        test_set, _ = load_dataset("nmnist-sim", "test", limit=500, **options)

    # The snnTorch tutorial's recurrent network.
    net = nn.Sequential(
        nn.Linear(info.n_inputs, args.hidden),
        snn.RLeaky(beta=0.9, linear_features=args.hidden, init_hidden=True, learn_beta=True),
        nn.Linear(args.hidden, info.n_classes),
        snn.Leaky(beta=0.9, init_hidden=True, output=True, reset_mechanism="none"),
    )
    loss_fn = ce_rank_loss(args.decision_threshold)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for epoch in range(args.epochs):
        steps = []
        for x, y in tqdm(DataLoader(train_set, batch_size=64, shuffle=True), desc=f"epoch {epoch + 1}", leave=False):
            x = x.float().transpose(0, 1)  # [time, batch, features]
            run = run_to_last_decision(net, x, args.decision_threshold)  # resets net, stops at the last t*
            loss = loss_fn(run.outputs, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps.append(run.outputs.shape[0])
        print(f"epoch {epoch + 1}: loss {float(loss.detach()):.3f}, forward passes stopped after "
              f"{np.mean(steps):.1f} of {x.shape[0]} steps on average")

    frames = np.stack([np.asarray(x) for x, _ in test_set]).astype(np.float64)
    labels = np.asarray([int(y) for _, y in test_set])
    mem, _ = record_snntorch(net, torch.from_numpy(frames).float().transpose(0, 1))
    accuracy, decision_steps = accuracy_rank(mem, torch.from_numpy(labels), args.decision_threshold)
    print(f"snnTorch: accuracy {100 * accuracy:.1f} % at the decision, mean decision step "
          f"{decision_steps.float().mean():.1f} of {frames.shape[1]} ({len(labels)} test samples)")

    network = export_snntorch(net, decision_threshold=args.decision_threshold, dt_ms=info.dt_ms)
    print(f"written: {save_network(network, args.out / 'network.npz')}")
    samples = min(args.lava_samples, len(labels))
    lava = evaluate(network, frames[:samples], labels[:samples])
    agreement = np.mean(lava.decision_steps == decision_steps.numpy()[:samples])
    print(f"Lava (floating point), {samples} samples: accuracy {100 * lava.accuracy:.1f} %, mean decision step "
          f"{lava.mean_decision_step:.1f}, same decision step as snnTorch for {100 * agreement:.1f} %")
    for preset in ("cmos45_fp32", "loihi"):
        for convention in ("event-driven", "neurobench"):
            energy = energy_per_inference(lava.counts, resolve_preset(preset), convention)
            print(f"  energy per inference, {preset}, {convention}: {energy.total_pj / 1000:.4g} nJ")


if __name__ == "__main__":
    main()
