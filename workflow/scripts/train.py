"""Stage 1 (pretrain, alpha = 0) or stage 3 (task + alpha * spatial loss) training, then held-out evaluation.

The resumable checkpoint lives in the run folder (not a declared output) under a key of everything that determines
the run (config, data store, sheet): a rerun after any of them changed starts afresh instead of resuming a stale
checkpoint. The log CSV is written there and copied to the declared output at the end; the folder is removed once the
outputs are written, unless run.keep_checkpoints."""

import json
import shutil
import sys
from pathlib import Path

from tdann import training
from tdann.provenance import digest, log, step

p = snakemake.params
cfg_stream, stream = p.stream, snakemake.wildcards.stream
cfg = training.TrainConfig.from_stream(stream, cfg_stream, p.stage, float(p.alpha), int(p.seed), p.device,
                                       snakemake.threads)
data, sheet = Path(snakemake.input.data), Path(snakemake.input.sheet)
runs = Path(p.run_dir)
try:
    with step(snakemake, config_keys=[f"streams.{stream}"], seeds={"seed": int(p.seed)}):
        run_dir = runs / training.run_key(cfg, digest(data), digest(sheet))
        nproc = int(getattr(snakemake.resources, "gpu", 1) or 1)  # several GPUs: one DDP rank per GPU
        if nproc > 1:
            stats = training.train_distributed(cfg, data, sheet, run_dir, Path(snakemake.output.weights),
                                               Path(snakemake.output.curve), nproc)
        else:
            stats = training.train(cfg, data, sheet, run_dir, Path(snakemake.output.weights),
                                   Path(snakemake.output.curve))
        result = training.evaluate(cfg, Path(snakemake.output.weights), data, sheet, seed=0,
                                   head_path=run_dir / "head.pt")
        result.update(stream=stream, stage=p.stage, alpha=float(p.alpha), seed=int(p.seed), lr=cfg.lr,
                      train_seconds=float(stats["seconds"]), run_key=run_dir.name)
        log.info("held-out: %s", ", ".join(f"{k} {result[k]:.4g}" for k in (
            "task_loss", "task_loss_chance", "task_loss_ratio", "task_top1", "task_top1_chance", "sl_mean")))
        Path(snakemake.output.evaluation).write_text(json.dumps(result, indent=1))
        for old in runs.iterdir():  # runs of earlier configs or data of this model: superseded, free their disk
            if old.is_dir() and old != run_dir and (old / training.CHECKPOINT_NAME).exists():
                shutil.rmtree(old)
        if not p.keep_checkpoints:  # finished: never resumed again (a rerun starts afresh and gives the same weights)
            shutil.rmtree(run_dir)
            log.info("run folder %s removed (run.keep_checkpoints: false)", run_dir)
except training.Preempted as err:  # SIGTERM from SLURM: checkpoint written; a retry resumes from it
    sys.exit(err.exit_code)
