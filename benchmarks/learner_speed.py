"""Learner training throughput: seqgcn's TorchLearner against a DataLoader reference loop.

Both paths train the same CIFAR ResNet-18 (same seed, SGD lr 0.1, momentum 0.9,
wd 5e-4, batch 128) on the same CIFAR-shaped random uint8 images with the CIFAR
augmentation (random crop 32 with padding 4, horizontal flip, per-channel
normalisation), in the same process:

(a) seqgcn — `TorchLearner.fit`: images resident on the device as uint8, batches
    gathered and augmented on the device in one batched op; on CUDA with
    channels_last + bf16 autocast (``--no-fast`` turns that off) and optionally
    ``--compile``.
(b) reference — written here the way research code usually does it: a per-sample
    `torch.utils.data.Dataset` whose ``__getitem__`` converts, pads, crops, flips
    and normalises one image, a `DataLoader` (shuffle, ``--workers``; persistent
    workers and pinned memory on CUDA, which is generous to it), fp32.

Warm-up steps are excluded; each path runs `--repeats` timed blocks of `--steps` steps
and reports the median (CUDA timings use CUDA events around each block).
The projection multiplies out one CIFAR-10 paper-protocol trial: 10 cycles of
200 epochs on 1k, 2k, ..., 10k labelled images = 200 · 55,000 = 11 M training
images (training only: evaluation, features and the GCN are not counted).

    python benchmarks/learner_speed.py --device cpu --n-images 512 --steps 2 --warmup 1 --threads 1  # ~1-2 min
    python benchmarks/learner_speed.py --device cuda --compile --json learner_speed.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import resource
import time

import numpy as np
import torch
from torch.nn import functional as F

import seqgcn
from seqgcn.data.base import Dataset
from seqgcn.learners import LearnerConfig, TorchLearner, build_net

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
PAPER_EPOCHS = 200
PAPER_LABELLED = tuple(1000 * c for c in range(1, 11))  # labelled-set size at each of the 10 cycles


# --------------------------------------------------------------------------- data
def cifar_like(n_images: int, seed: int) -> Dataset:
    """Random uint8 images (n, 3, 32, 32) with 10 random labels (only the speed matters)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_images, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_images).astype(np.int64)
    return Dataset("cifar_like", x, y, x[:256], y[:256], n_classes=10, mean=CIFAR_MEAN, std=CIFAR_STD)


class PerSampleCifar(torch.utils.data.Dataset):
    """The usual research-code dataset: one image per ``__getitem__``, transforms on the CPU."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int):
        self.x, self.y = x, y
        self.rng = np.random.default_rng(seed)  # each worker gets a copy (same crops per worker; speed only)
        self.mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
        self.std = torch.tensor(CIFAR_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = torch.from_numpy(self.x[i]).float().div(255.0)  # (3, 32, 32) in [0, 1]
        img = F.pad(img, (4, 4, 4, 4))  # (3, 40, 40)
        r, c = self.rng.integers(0, 9, size=2)
        img = img[:, r:r + 32, c:c + 32]  # (3, 32, 32)
        if self.rng.random() < 0.5:
            img = img.flip(2)
        return (img - self.mean) / self.std, int(self.y[i])


# --------------------------------------------------------------------------- timing
class Timer:
    """Wall time of a block: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, float("nan")

    @contextlib.contextmanager
    def measure(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            end.synchronize()
            self.seconds = start.elapsed_time(end) / 1000.0
        else:
            start = time.perf_counter()
            yield
            self.seconds = time.perf_counter() - start


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak RSS so far (cumulative)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# --------------------------------------------------------------------------- the two paths
def time_blocks(label: str, block, args, device: torch.device) -> dict:
    """Run `block` (which returns steps, images, loss) `args.repeats` times; report the median time."""
    reset_peak(device)
    seconds, timer = [], Timer(device)
    for _ in range(args.repeats):
        with timer.measure():
            steps, images, loss = block()
        seconds.append(timer.seconds)
    median = float(np.median(seconds))
    return {"path": label, "steps": steps, "images": images, "seconds": median, "seconds_all": seconds,
            "images_per_s": images / median, "peak_mb": peak_mb(device), "final_loss": float(loss)}


def run_seqgcn(ds: Dataset, args, device: torch.device) -> dict:
    """TorchLearner.fit on `steps` full batches after `warmup` full batches (compilation happens there)."""
    cfg = LearnerConfig(arch="resnet18", epochs=1, batch_size=args.batch_size, augment="crop_flip",
                        milestones=(), device=str(device), fast=not args.no_fast, compile=args.compile)
    learner = TorchLearner(ds, cfg, seed=0)
    bs = args.batch_size
    if args.warmup > 0:
        warm = np.arange(min(ds.n_train, args.warmup * bs))
        learner.fit(warm, ds.y_train[warm])
    rows = np.arange(min(ds.n_train, args.steps * bs))
    epochs = math.ceil(args.steps * bs / len(rows))

    def block():
        stats = learner.fit(rows, ds.y_train[rows], epochs=epochs)
        return stats["steps"], stats["images"], stats["loss"]

    extras = "channels_last+bf16" if learner.fast else "fp32"
    extras += "+compile" if args.compile and device.type == "cuda" else ""
    return time_blocks(f"seqgcn TorchLearner (device data, batched aug, {extras})", block, args, device)


def run_reference(ds: Dataset, args, device: torch.device, steps: int) -> dict:
    """Per-sample Dataset + DataLoader + fp32 training loop: `steps` timed steps after `warmup`."""
    net = build_net("resnet18", in_channels=3, n_outputs=10, image_size=32, seed=0).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loader = torch.utils.data.DataLoader(
        PerSampleCifar(ds.x_train, ds.y_train, seed=0), batch_size=args.batch_size, shuffle=True,
        num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
        drop_last=True, generator=torch.Generator().manual_seed(0),
    )

    def batches():
        while True:
            yield from loader

    stream = batches()
    net.train()

    def step() -> torch.Tensor:
        xb, yb = next(stream)
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        out, _ = net(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def block():
        for _ in range(steps):
            loss = step()
        return steps, steps * args.batch_size, loss  # drop_last: every step is a full batch

    for _ in range(args.warmup):
        step()
    label = f"reference per-sample Dataset + DataLoader (workers={args.workers}, fp32)"
    return time_blocks(label, block, args, device)


# --------------------------------------------------------------------------- report
def paper_trial_minutes(images_per_s: float) -> float:
    images = PAPER_EPOCHS * sum(PAPER_LABELLED)  # 200 · 55,000 = 11,000,000
    return images / images_per_s / 60.0


def print_table(rows: list[dict], device: torch.device) -> None:
    mem = "peak alloc MB" if device.type == "cuda" else "peak RSS MB*"
    print(f"{'path':<72} {'images/s':>10} {'seconds':>9} {'steps':>6} {mem:>14} {'trial min':>10}")
    for r in rows:
        print(f"{r['path']:<72} {r['images_per_s']:>10.1f} {r['seconds']:>9.2f} {r['steps']:>6d} "
              f"{r['peak_mb']:>14.0f} {r['trial_minutes']:>10.1f}")
    if device.type != "cuda":
        print("* CPU memory is the process's peak RSS so far (cumulative over both paths).")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--n-images", type=int, default=None, help="images in the pool (default 2048 CPU, 50000 CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per path (default 16 CPU, 200 CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 CPU, 20 CUDA)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per path; the median is reported")
    parser.add_argument("--workers", type=int, default=None, help="reference DataLoader workers (default 0 CPU, 2 CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the seqgcn model (CUDA only)")
    parser.add_argument("--no-fast", action="store_true", help="seqgcn path without channels_last/bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for this process")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    gpu = device.type == "cuda"
    args.n_images = args.n_images or (50_000 if gpu else 2048)
    args.steps = args.steps or (200 if gpu else 16)
    args.warmup = args.warmup if args.warmup is not None else (20 if gpu else 2)
    args.workers = args.workers if args.workers is not None else (2 if gpu else 0)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n_images < args.batch_size:
        parser.error(f"--n-images={args.n_images} must be at least --batch-size={args.batch_size}")

    ds = cifar_like(args.n_images, seed=0)
    ours = run_seqgcn(ds, args, device)
    if gpu:
        torch.cuda.empty_cache()  # the learner's model is garbage now; its cached blocks go back
    ref = run_reference(ds, args, device, steps=ours["steps"])
    rows = [ours, ref]
    for r in rows:
        r["trial_minutes"] = paper_trial_minutes(r["images_per_s"])
    name = torch.cuda.get_device_name(device) if gpu else platform.processor() or platform.machine()
    print(f"ResNet-18 training throughput on {device} ({name}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, batch {args.batch_size}, pool {args.n_images} images, "
          f"median of {args.repeats} timed blocks")
    print_table(rows, device)
    ratio = ours["images_per_s"] / ref["images_per_s"]
    print(f"speed-up seqgcn / reference: {ratio:.2f}x")
    print(f"projection, one CIFAR-10 paper-protocol trial (10 cycles x 200 epochs on 1k..10k labels = "
          f"{PAPER_EPOCHS * sum(PAPER_LABELLED) / 1e6:.0f} M images, training only): "
          f"seqgcn {ours['trial_minutes']:.1f} min, reference {ref['trial_minutes']:.1f} min")
    result = {
        "benchmark": "learner_speed", "seqgcn_version": seqgcn.__version__, "torch": torch.__version__,
        "device": str(device), "device_name": name, "threads": torch.get_num_threads(),
        "args": vars(args), "results": rows, "speedup": ratio,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
