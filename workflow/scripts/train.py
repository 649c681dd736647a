"""Stage 1 (pretrain, alpha = 0) or stage 3 (task + alpha * spatial loss) training, then held-out evaluation.

The resumable checkpoint lives in the run folder (not a declared output); the log CSV is written there and copied to
the declared output at the end."""

import json
import sys
from pathlib import Path

from tdann import training
from tdann.provenance import step

p = snakemake.params
cfg_stream, stream = p.stream, snakemake.wildcards.stream
schedule = cfg_stream[p.stage]
alpha = {layer: float(p.alpha) * float(spec.get("alpha_scale", 1.0)) for layer, spec in cfg_stream["layers"].items()}
cfg = training.TrainConfig.from_dict(
    dict(
        stream=stream,
        arch=cfg_stream["arch"],
        width=cfg_stream["width"],
        stem=cfg_stream["stem"],
        input_size=cfg_stream["input_size"],
        clip_len=cfg_stream["clip_len"],
        task=cfg_stream["task"],
        alpha=alpha,
        layers=tuple(cfg_stream["layers"]),
        steps=schedule["steps"],
        batch_size=schedule["batch_size"],
        lr=schedule["lr"],
        warmup_steps=schedule["warmup_steps"],
        seed=int(p.seed),
        device=p.device,
        threads=snakemake.threads,
        checkpoint_every=max(1, schedule["steps"] // 4),
        **cfg_stream["optim"],
    )
)
run_dir = Path(p.run_dir)
try:
    with step(snakemake, config_keys=[f"streams.{stream}"], seeds={"seed": int(p.seed)}):
        stats = training.train(cfg, Path(snakemake.input.data), Path(snakemake.input.sheet), run_dir,
                               Path(snakemake.output.weights), Path(snakemake.output.curve), progress=p.progress)
        result = training.evaluate(cfg, Path(snakemake.output.weights), Path(snakemake.input.data),
                                   Path(snakemake.input.sheet), seed=0, head_path=run_dir / "head.pt")
        result.update(stream=stream, stage=p.stage, alpha=float(p.alpha), seed=int(p.seed),
                      train_seconds=float(stats["seconds"]))
        Path(snakemake.output.evaluation).write_text(json.dumps(result, indent=1))
except training.Preempted as err:  # SIGTERM from SLURM: checkpoint written; a retry resumes from it
    sys.exit(err.exit_code)
