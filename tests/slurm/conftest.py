"""Session fixture: a throwaway single-node SLURM cluster (tests/slurm/start-cluster.sh), stopped at the end.

The cluster is skipped, with the script's reason, only where SLURM is absent and cannot be installed (no apt-get,
or not root); any other failure to start it fails the tests. Teardown checks that every daemon it started is gone.
"""

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
UNAVAILABLE = 77  # start-cluster.sh: SLURM missing and not installable here


@dataclass
class Cluster:
    """A running test cluster: its directory and the environment that points the SLURM clients at it."""

    dir: Path
    env: dict[str, str]

    def cmd(self, *args: str) -> str:
        """Run a SLURM client command (scontrol, squeue, ...) against this cluster; return its stdout."""
        out = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict (JobId, JobState, TresPerJob, TimeLimit, Comment, ...)."""
        fields = {}
        for token in self.cmd("scontrol", "show", "job", "-o", job_id).split():
            key, _, value = token.partition("=")
            fields.setdefault(key, value)
        return fields


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture(scope="session")
def slurm_cluster():
    # Under /tmp with a short name: the munge socket path must stay below the 108-byte limit of unix sockets.
    cdir = Path(tempfile.mkdtemp(prefix="tdann-slurm-", dir="/tmp"))
    t0 = time.time()
    out = subprocess.run([str(HERE / "start-cluster.sh"), str(cdir)], capture_output=True, text=True, timeout=300)
    if out.returncode == UNAVAILABLE:
        shutil.rmtree(cdir, ignore_errors=True)
        pytest.skip(f"no SLURM test cluster: {out.stderr.strip()}")
    if out.returncode != 0:
        subprocess.run([str(HERE / "stop-cluster.sh"), str(cdir)], capture_output=True, timeout=120)
        pytest.fail(f"start-cluster.sh failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    pids = {p.stem: int(p.read_text()) for p in (cdir / "run").glob("*.pid")}
    assert set(pids) == {"munged", "slurmctld", "slurmd"}, pids
    env = dict(os.environ, SLURM_CONF=str(cdir / "slurm.conf"), PATH=f"{cdir / 'bin'}:{os.environ['PATH']}")
    print(f"\nSLURM test cluster up in {time.time() - t0:.1f} s: {cdir}")
    try:
        yield Cluster(cdir, env)
    finally:
        stop = subprocess.run([str(HERE / "stop-cluster.sh"), str(cdir)], capture_output=True, text=True,
                              timeout=120)
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        if stop.returncode == 0 and not left:
            shutil.rmtree(cdir, ignore_errors=True)
        assert stop.returncode == 0, stop.stderr
        assert not left, f"daemons still running after stop-cluster.sh: {left} (cluster dir {cdir})"
