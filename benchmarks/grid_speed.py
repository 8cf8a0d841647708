"""A (trial, method) grid on the local backend (1 worker, then the default workers) and on Ray: wall times, ratios.

The grid (default: digits, 4 methods × 4 trials = 16 jobs, 4 cycles of 10 epochs)
runs three times from scratch into a temporary folder, each job with torch on
``config.threads`` threads (default 1): ``LocalRunner(workers=1)`` (job after
job in this process), ``LocalRunner()`` (one worker process per free core) and
``RayRunner()`` (a local Ray instance with all CPUs, one task per job). All three
must give the same metrics and selections, bit for bit.

    python benchmarks/grid_speed.py                               # the default grid
    python benchmarks/grid_speed.py --trials 1 --methods Random CoreSet --epochs 1 --cycles 2   # a quick check

Printed: wall time of each backend (Ray: also its start-up, measured apart),
the ratio ray / local, and Ray's overhead per task: the time a task spent
outside its job (`JobOutcome`: from the task's start in the worker until the
driver saw it finish, minus the job's own time; the first task of a worker also
loads the dataset there), and the delay before the first task started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    from seqgcn.experiment import ExperimentConfig, LocalRunner, RayRunner, run_experiment

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--methods", nargs="+", default=["Random", "CoreSet", "UncertainGCN", "CoreGCN"])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--cycles", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10, help="learner epochs per cycle")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every job (a config value)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    args = p.parse_args(argv)

    import ray

    config = ExperimentConfig(dataset=args.dataset, methods=tuple(args.methods), trials=args.trials, cycles=args.cycles,
                              epochs=args.epochs, seed_size=40, budget=40, subset=500, threads=args.threads)
    jobs = len(config.methods) * config.trials
    print(f"grid: {config.dataset}, {len(config.methods)} methods × {config.trials} trials = {jobs} jobs of "
          f"{config.cycles} cycles × {config.epochs} epochs; {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="grid_speed-") as tmp:
        t0 = time.perf_counter()
        local = run_experiment(config, Path(tmp) / "local", progress=False, runner=LocalRunner(workers=1))
        local_wall = time.perf_counter() - t0
        print(f"local, 1 worker:  {local_wall:7.1f} s", flush=True)
        runner = LocalRunner()
        t0 = time.perf_counter()
        parallel = run_experiment(config, Path(tmp) / "parallel", progress=False, runner=runner)
        parallel_wall = time.perf_counter() - t0
        workers = runner.workers_for(config, jobs)
        print(f"local, {workers} workers: {parallel_wall:7.1f} s (ratio to 1 worker: {parallel_wall / local_wall:.2f})",
              flush=True)

        t0 = time.perf_counter()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=256 * 2**20)
        ray_start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            submitted = time.time()
            on_ray = run_experiment(config, Path(tmp) / "ray", progress=False, runner=RayRunner())
            ray_wall = time.perf_counter() - t0
        finally:
            ray.shutdown()

    same = [_key(r) for r in local.records] == [_key(r) for r in parallel.records] == [_key(r) for r in on_ray.records]
    outside = [o.finished_at - o.started_at - o.job_seconds for o in on_ray.outcomes]  # per task
    first_start = min(o.started_at for o in on_ray.outcomes) - submitted
    job_mean = statistics.mean(o.job_seconds for o in on_ray.outcomes)
    print(f"ray:              {ray_wall:7.1f} s (+ {ray_start:.1f} s to start Ray; {config.threads} CPU per task)")
    print(f"ratio ray / local {workers} workers: {ray_wall / parallel_wall:.2f} (with Ray's start-up: "
          f"{(ray_wall + ray_start) / parallel_wall:.2f})")
    print(f"per task: job {job_mean:.2f} s mean; outside the job {statistics.mean(outside):.2f} s mean, "
          f"{statistics.median(outside):.2f} s median, {max(outside):.2f} s max; first task started "
          f"{first_start:.2f} s after submission")
    print(f"same metrics and selections (1 worker, {workers} workers, ray): {'yes' if same else 'NO'}")
    return 0 if same else 1


def _key(record: dict) -> tuple:
    return record["method"], record["trial"], record["cycle"], record["metric"], tuple(record["selected"])


if __name__ == "__main__":
    sys.exit(main())
