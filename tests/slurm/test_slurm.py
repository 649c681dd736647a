"""The real workflow on the local SLURM cluster through profiles/slurm (+ profiles/slurm-local), compared with a local
run of the same tiny config.

One chain that has both kinds of rule: fetch_dataset, image_store, init_sheet, stimulus_set (CPU) and pretrain,
responses (GPU). While pretrain runs, the test sends it SIGTERM the way `--signal=TERM@300` would near the time limit
(`scancel --signal=TERM`, which signals the job steps): train.py checkpoints and exits 75, the profile's `retries`
resubmits it, and the retry resumes. Checks: every job was a SLURM job (job ids in the logs and in slurmctld), GPU
rules carried a GPU request (TresPerJob gres:gpu:1) and CPU rules none, the preempted job was retried with the
attempt-scaled memory and time, and the outputs equal the local run's (so the resumed training is bit-exact too).
"""

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from rulefiles import gpu_rules

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIGS = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/tiny.yaml"), str(Path(__file__).with_name("preempt.yaml"))]
TARGET = "results/responses/ventral/pretrain/gratings.h5"
PREEMPTED = "rule_pretrain_wildcards_ventral"  # the SLURM comment the plugin gives that job
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 900) -> str:
    """Run Snakemake on the repository's Snakefile in `workdir` (results under it); fail with the log tail."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", *CONFIGS, *args, "--", TARGET]
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    log = out.stdout + out.stderr
    assert out.returncode == 0, f"{' '.join(cmd)}\n{log[-8000:]}"
    return log


def preempt_when_checkpointed(cluster, run_dir: Path, done: threading.Event, sent: dict) -> None:
    """Once pretrain has written its first checkpoint, SIGTERM its SLURM job's steps (once); errors go to `sent`."""
    runs = run_dir / "results/runs/ventral/pretrain"  # checkpoints sit in a folder named by the run's key
    try:
        while not done.is_set() and not sent:
            if any(runs.glob("*/checkpoint.pt")):
                for line in cluster.cmd("squeue", "-h", "-t", "R", "-o", "%i %k").splitlines():
                    job_id, comment = line.split(maxsplit=1)
                    if comment == PREEMPTED:
                        cluster.cmd("scancel", "--signal=TERM", job_id)
                        sent["job"] = job_id
            time.sleep(0.2)
    except Exception as err:  # reported by the test that needs it
        sent["error"] = repr(err)


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory):
    """(slurm workdir, slurm log, local workdir, {"job": the preempted job id}, seconds for the SLURM run)."""
    base = tmp_path_factory.mktemp("slurm-run")
    slurm_dir, local_dir = base / "slurm", base / "local"
    done, sent = threading.Event(), {}
    watcher = threading.Thread(target=preempt_when_checkpointed, args=(slurm_cluster, slurm_dir, done, sent))
    watcher.start()
    t0 = time.time()
    try:
        log = snakemake(slurm_dir, "--profile", str(ROOT / "profiles/slurm"),
                        "--workflow-profile", str(ROOT / "profiles/slurm-local"), env=slurm_cluster.env)
    finally:
        done.set()
        watcher.join()
    seconds = time.time() - t0
    snakemake(local_dir, "--workflow-profile", "none", "--cores", "2")
    print(f"\nSLURM run {seconds:.0f} s")
    return slurm_dir, log, local_dir, sent, seconds


def slurm_jobs(slurm_dir: Path) -> dict[str, list[str]]:
    """Rule -> SLURM job ids, from the job logs logs/slurm/rule_<rule>/.../<jobid>.log."""
    jobs: dict[str, list[str]] = {}
    for f in sorted((slurm_dir / "logs/slurm").rglob("*.log")):
        rule = f.relative_to(slurm_dir / "logs/slurm").parts[0].removeprefix("rule_")
        jobs.setdefault(rule, []).append(f.stem)
    return jobs


def test_every_job_was_a_slurm_job(runs, slurm_cluster):
    slurm_dir, log, _, _, _ = runs
    jobs = slurm_jobs(slurm_dir)
    submitted = {job_id: Path(path) for job_id, path in SUBMITTED.findall(log)}
    planned = re.search(r"^total\s+(\d+)$", log, flags=re.M)
    assert planned, log[-3000:]
    ids = [j for js in jobs.values() for j in js]
    assert set(jobs) == {"fetch_dataset", "image_store", "init_sheet", "stimulus_set", "pretrain", "responses_ventral"}
    assert sorted(ids) == sorted(submitted), (jobs, submitted)
    assert len(ids) == int(planned.group(1)) + 1  # + the preempted pretrain attempt
    for job_id, path in submitted.items():
        assert path.name == f"{job_id}.log" and path.exists()
        info = slurm_cluster.job(job_id)
        assert info["JobId"] == job_id
        rule = path.relative_to(slurm_dir / "logs/slurm").parts[0]
        assert info["Comment"].startswith(rule), (info["Comment"], rule)
        assert info["WorkDir"] == str(slurm_dir)


def test_gpu_rules_requested_gpus_cpu_rules_none(runs, slurm_cluster):
    slurm_dir, _log, _, _, _ = runs
    gpu = gpu_rules()
    assert {"pretrain", "train", "responses_ventral", "responses_dorsal", "swapopt", "swapopt_responses"} <= gpu
    for rule, ids in slurm_jobs(slurm_dir).items():
        for job_id in ids:
            info = slurm_cluster.job(job_id)
            tres = info.get("TresPerJob", "") + info.get("TresPerNode", "") + info["TRES"]
            if rule in gpu:
                assert "gres:gpu:1" in info.get("TresPerJob", ""), (rule, info)
                assert info["MinMemoryNode"] in ("2000M", "4000M"), (rule, info["MinMemoryNode"])
            else:
                assert "gpu" not in tres, (rule, info)
                assert info["MinMemoryNode"] == "1000M" and info["TimeLimit"] == "00:10:00", (rule, info)


def test_preempted_training_was_retried_and_resumed(runs, slurm_cluster):
    slurm_dir, _log, _, sent, _ = runs
    assert "error" not in sent, sent
    preempted = sent.get("job")
    assert preempted, "pretrain finished before the test could send SIGTERM (no checkpoint seen while it ran)"
    ids = slurm_jobs(slurm_dir)["pretrain"]
    assert len(ids) == 2 and preempted in ids, ids
    first, retry = (slurm_cluster.job(j) for j in sorted(ids, key=int))
    assert first["JobId"] == preempted and first["JobState"] == "FAILED"
    assert retry["JobState"] == "COMPLETED"
    # attempt-scaled resources from the profile: 2000 MB / 20 min, then 4000 MB / 40 min
    assert (first["MinMemoryNode"], first["TimeLimit"]) == ("2000M", "00:20:00")
    assert (retry["MinMemoryNode"], retry["TimeLimit"]) == ("4000M", "00:40:00")
    first_log = (slurm_dir / f"logs/slurm/rule_pretrain/ventral/{preempted}.log").read_text()
    assert "SIGTERM at step" in first_log or "exit status 75" in first_log, first_log[-3000:]


def _equal_csv(a: Path, b: Path) -> bool:
    """CSV tables equal, except for wall-clock speed columns."""
    x, y = pd.read_csv(a), pd.read_csv(b)
    keep = [c for c in x.columns if not re.search(r"per_s$|^wall|time", c)]
    return list(x.columns) == list(y.columns) and x[keep].equals(y[keep])


def _equal_h5(a: Path, b: Path) -> bool:
    """Same dataset names and values (attributes hold provenance: times, hosts)."""
    with h5py.File(a) as fa, h5py.File(b) as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        if names_a != names_b:
            return False
        for n in names_a:
            if isinstance(fa[n], h5py.Dataset):
                va, vb = fa[n][()], fb[n][()]
                if not np.array_equal(va, vb, equal_nan=np.asarray(va).dtype.kind == "f"):
                    return False
    return True


def _equal_obj(x, y) -> bool:
    """Nested dicts / lists / tensors of a torch checkpoint equal (torch.save's bytes are not reproducible)."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_equal_obj(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(_equal_obj(a, b) for a, b in zip(x, y))
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
    return x == y


def _untimed(path: Path) -> dict:
    """A JSON record without its wall-clock fields (e.g. train_seconds), which differ between any two runs, and the
    run key (see :func:`_unkeyed`)."""
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.endswith("seconds") and k != "run_key"}


def _unkeyed(path: Path) -> Path:
    """``runs/<stream>/<run>/<key>/file`` -> ``runs/<stream>/<run>/KEY/file``: the key hashes the input files' bytes,
    and the data stores carry their provenance record (times, host) inside, so two runs key their folders apart."""
    parts = list(path.parts)
    if parts and parts[0] == "runs":
        parts = ["KEY" if re.fullmatch(r"[0-9a-f]{16}", x) else x for x in parts]
    return Path(*parts)


def test_outputs_equal_a_local_run(runs):
    slurm_dir, _, local_dir, _, _ = runs
    skip = re.compile(r"^(logs|benchmarks)/|\.prov\.json$|\.snakemake_timestamp$")
    files = sorted(p.relative_to(local_dir / "results") for p in (local_dir / "results").rglob("*") if p.is_file())
    files = [f for f in files if not skip.search(f.as_posix())]
    assert len(files) > 20 and Path(TARGET).relative_to("results") in files
    theirs = {_unkeyed(p.relative_to(slurm_dir / "results")): p for p in (slurm_dir / "results").rglob("*")
              if p.is_file()}
    differ = []
    for f in files:
        a, b = local_dir / "results" / f, theirs.get(_unkeyed(f), slurm_dir / "results" / f)
        if not b.exists():
            differ.append(f"{f} (missing)")
        elif f.suffix == ".h5":
            differ += [] if _equal_h5(a, b) else [str(f)]
        elif f.suffix == ".csv":
            differ += [] if _equal_csv(a, b) else [str(f)]
        elif f.suffix == ".pt":
            differ += [] if _equal_obj(torch.load(a, weights_only=True), torch.load(b, weights_only=True)) else [
                str(f)]
        elif f.suffix == ".json":
            differ += [] if _untimed(a) == _untimed(b) else [str(f)]
        elif a.read_bytes() != b.read_bytes():
            differ.append(str(f))
    assert not differ, differ
