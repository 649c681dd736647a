"""Several processes per job: :func:`train` under torchrun from a rule, and the ranks' entry point."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import EXIT_PREEMPTED, Preempted, TrainConfig, TrainConfigError, TrainingError, log_
from .loop import train

# --------------------------------------------------------------------------------------------- torchrun entry


PREEMPTED_FLAG = "preempted"  # written by rank 0 of a torchrun job that stopped on SIGTERM


def train_distributed(cfg: TrainConfig, data_path: str | Path, sheets_path: str | Path, run_dir: str | Path,
                      weights_out: str | Path, log_csv: str | Path, nproc: int) -> dict[str, Any]:
    """:func:`train` in ``nproc`` processes under torchrun (DDP: NCCL on GPUs, gloo on CPUs), from a rule's job.

    The config goes to the ranks as JSON in ``run_dir``; rank 0 writes the statistics :func:`train` returns. A
    SIGTERM (SLURM preemption) reaches every rank: they checkpoint together and this raises :class:`Preempted`, so
    the job exits 75 and its retry resumes, as a one-process job does."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path, stats_path, flag = run_dir / "ddp_config.json", run_dir / "ddp_stats.json", run_dir / PREEMPTED_FLAG
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    stats_path.unlink(missing_ok=True)
    flag.unlink(missing_ok=True)
    library = str(Path(__file__).resolve().parents[2])  # workflow/: this checkout's tdann, for every rank
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([library, *inherited])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "tdann.training", "--config", str(cfg_path), "--data", str(data_path), "--sheets", str(sheets_path),
           "--run-dir", str(run_dir), "--weights", str(weights_out), "--log-csv", str(log_csv),
           "--stats", str(stats_path)]
    log_.info("DDP over %d processes: %s", nproc, " ".join(cmd))
    done = subprocess.run(cmd, env=env)
    if flag.exists() or done.returncode == EXIT_PREEMPTED:
        flag.unlink(missing_ok=True)
        raise Preempted(f"SIGTERM: the {nproc} ranks checkpointed to {run_dir}; rerun to resume "
                        f"(exit code {EXIT_PREEMPTED})")
    if done.returncode != 0 or not stats_path.exists():
        raise TrainingError(f"torchrun over {nproc} processes exited {done.returncode} ({run_dir}; the ranks' "
                            "errors are in this job's log above)")
    return json.loads(stats_path.read_text())


def main_ddp(argv: list[str] | None = None) -> int:
    """Entry point for ``torchrun --nproc_per_node=N -m tdann.training --config cfg.json ...``.

    The JSON file holds a :class:`TrainConfig` dict. Returns 0, or :data:`EXIT_PREEMPTED` after SIGTERM.
    """
    p = argparse.ArgumentParser(prog="python -m tdann.training", description=main_ddp.__doc__)
    p.add_argument("--config", required=True, help="JSON file with the TrainConfig fields")
    p.add_argument("--data", required=True, help="HDF5 image or clip store")
    p.add_argument("--sheets", required=True, help="HDF5 sheets file (positions, neighbourhoods)")
    p.add_argument("--run-dir", required=True, help="directory for checkpoints (resumed from if present)")
    p.add_argument("--weights", required=True, help="output: encoder state dict")
    p.add_argument("--log-csv", required=True, help="output: per-step CSV log")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--stats", help="output (rank 0): JSON of the run's statistics")
    args = p.parse_args(argv)
    try:
        cfg = TrainConfig.from_dict(json.loads(Path(args.config).read_text()))
    except (OSError, json.JSONDecodeError) as err:
        raise TrainConfigError(f"{args.config}: cannot read config ({err})") from err
    rank0 = int(os.environ.get("RANK", "0")) == 0
    try:
        stats = train(cfg, args.data, args.sheets, args.run_dir, args.weights, args.log_csv,
                      progress=False if args.no_progress else None)
    except Preempted as err:
        print(err, file=sys.stderr)
        if rank0:
            (Path(args.run_dir) / PREEMPTED_FLAG).write_text(str(err))
        return EXIT_PREEMPTED
    if args.stats and rank0:
        Path(args.stats).write_text(json.dumps(stats, default=float))
    return 0
