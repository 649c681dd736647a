"""The sbatch command the SLURM executor plugin would submit, for every rule of the workflow, built by the plugin's own
code (`submit_string.get_submit_command` + `utils.set_gres_string`) from real Snakemake jobs whose resources come
from the profiles as Snakemake parses them (yte, per-key workflow-profile override, `attempt`). No cluster needed.
"""

import os
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
import snakemake_executor_plugin_slurm as slurm_plugin
import yte
from snakemake.api import SnakemakeApi
from snakemake.cli import parse_args
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string
from snakemake_executor_plugin_slurm.validation import validate_slurm_extra
from snakemake_interface_common.exceptions import WorkflowError

from rulefiles import gpu_rules

ROOT = Path(__file__).resolve().parents[2]
SLURM, LOCAL = ROOT / "profiles/slurm", ROOT / "profiles/slurm-local"
ENV = {"TDANN_SLURM_ACCOUNT": "acct1", "TDANN_CPU_PARTITION": "cpuq", "TDANN_GPU_PARTITION": "gpuq"}
TRAINING = ("pretrain", "train")


def profile_yaml(path: Path) -> dict:
    """A profile file as Snakemake reads it (yte), with the current environment."""
    with open(path / "profile.v9+.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True)


class Plan:
    """Snakemake's parsed arguments and one job per rule of the default target, for a set of profile flags."""

    def __init__(self, profile_args: list[str], env: dict[str, str], workdir: Path):
        self.workdir = workdir
        cwd = os.getcwd()
        with pytest.MonkeyPatch.context() as mp:
            for k in ENV:
                mp.delenv(k, raising=False)
            for k, v in env.items():
                mp.setenv(k, v)
            _, self.args = parse_args([*profile_args, "-s", str(ROOT / "Snakefile")])
            try:
                with SnakemakeApi(OutputSettings()) as api:
                    wf = api.workflow(
                        resource_settings=ResourceSettings(
                            nodes=self.args.jobs, overwrite_threads=self.args.set_threads,
                            overwrite_resources=self.args.set_resources,
                            default_resources=self.args.default_resources),
                        config_settings=ConfigSettings(configfiles=[ROOT / "config/config.yaml"]),
                        snakefile=ROOT / "Snakefile", workdir=workdir)
                    wf.dag(DAGSettings())
                    workflow = wf._workflow
                    workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
                    workflow._build_dag()
                    self.jobs = {}
                    for job in workflow.dag.needrun_jobs():
                        self.jobs.setdefault(job.rule.name, job)
            finally:
                os.chdir(cwd)

    def resources(self, rule: str) -> dict:
        """The job's evaluated resources (input sizes are looked up relative to the workdir)."""
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.workdir)
            return dict(self.jobs[rule].resources.items())

    def sbatch(self, rule: str, attempt: int = 1) -> str:
        """The plugin's sbatch line (without --wrap) for `rule` at `attempt`, account and partition included."""
        job = self.jobs[rule]
        job.attempt = attempt  # resets the job's resources: they are evaluated again, in the workdir
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.workdir)
            validate_slurm_extra(job)
            executor = SimpleNamespace(_fallback_account_arg="", _fallback_partition="", _partitions=None,
                                       logger=SimpleNamespace(warning=print, info=print, debug=print))
            params = dict(run_uuid="uuid", slurm_logfile=f"logs/slurm/rule_{rule}/%j.log",
                          comment_str=f"rule_{rule}", account=next(slurm_plugin.Executor.get_account_arg(executor, job)),
                          partition=slurm_plugin.Executor.get_partition_arg(executor, job), workdir=str(self.workdir))
            return get_submit_command(job, params) + set_gres_string(job)


@pytest.fixture(scope="module")
def plans(tmp_path_factory, monkeypatch_module):
    # validate_account asks sacctmgr, which only a real cluster has: accept the account as given
    monkeypatch_module.setattr(slurm_plugin, "validate_account", lambda account, logger: account)
    wd = tmp_path_factory.mktemp("sbatch")
    return {
        "slurm": Plan(["--profile", str(SLURM)], ENV, wd),  # as users run it: profiles/default applies on top
        "slurm-unset": Plan(["--workflow-profile", str(SLURM)], {}, wd),
        "local": Plan(["--profile", str(SLURM), "--workflow-profile", str(LOCAL)], {}, wd),
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def flags(cmd: str) -> list[str]:
    return shlex.split(cmd)


def value(cmd: str, flag: str) -> str | None:
    """The argument after `flag` (or after `flag=`) in an sbatch line."""
    args = flags(cmd)
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def test_gpu_rules_request_gpus_with_the_profiles_resources(plans):
    spec = profile_yaml(SLURM)
    plan = plans["slurm"]
    gpu = gpu_rules()
    assert {"pretrain", "train", "swapopt", "swapopt_responses", "responses_ventral", "responses_dorsal"} <= gpu
    assert gpu <= set(spec["set-resources"]), "a GPU rule without partition / memory / time in profiles/slurm"
    for rule in sorted(gpu & set(plan.jobs)):
        res = spec["set-resources"][rule]
        for attempt in (1, 2):
            cmd = plan.sbatch(rule, attempt)
            assert value(cmd, "--gpus") == "1", cmd
            assert value(cmd, "--cpus-per-gpu") == str(res["cpus_per_gpu"]), cmd
            assert value(cmd, "--cpus-per-task") is None and value(cmd, "--ntasks-per-gpu") is None, cmd
            assert value(cmd, "--mem") == str(eval(res["mem_mb"], {"attempt": attempt})), cmd
            assert value(cmd, "-t") == str(eval(res["runtime"], {"attempt": attempt})), cmd
            assert value(cmd, "-p") == "gpuq" and value(cmd, "-A") == "acct1", cmd
        # the job's threads (torch threads) match the CPUs it asks for
        assert plan.jobs[rule].threads == res["cpus_per_gpu"], rule
    assert value(plan.sbatch("train", 2), "--mem") == str(2 * int(value(plan.sbatch("train", 1), "--mem")))


def test_cpu_rules_request_no_gpu(plans):
    plan, gpu = plans["slurm"], gpu_rules()
    cpu = sorted(set(plan.jobs) - gpu - {"all"})
    assert {"fetch_dataset", "init_sheet", "metrics", "decode_shard"} <= set(cpu)
    for rule in cpu:
        cmd = plan.sbatch(rule)
        assert "gpu" not in cmd and value(cmd, "--cpus-per-gpu") is None, cmd
        assert value(cmd, "--cpus-per-task") == str(plan.resources(rule).get("cpus_per_task") or plan.jobs[rule].threads)
        assert value(cmd, "-p") == "cpuq" and value(cmd, "--ntasks") == "1", cmd
    assert value(plan.sbatch("decode_shard"), "--cpus-per-task") == "8"


def test_training_gets_sigterm_before_its_time_limit(plans):
    for rule in TRAINING:
        cmd = plans["slurm"].sbatch(rule)
        assert re.search(r"--signal=(B:)?TERM@\d+", cmd), cmd
        assert "--signal" in plans["local"].sbatch(rule)
    assert "--signal" not in plans["slurm"].sbatch("responses_ventral")
    # the plugin's check is live: a flag it manages is refused in slurm_extra
    job = SimpleNamespace(resources=SimpleNamespace(slurm_extra="--signal=TERM@300 --mem=10"))
    with pytest.raises(WorkflowError, match="memory"):
        validate_slurm_extra(job)


def test_unset_environment_leaves_account_and_partition_out(plans):
    plan = plans["slurm-unset"]
    for rule in ("pretrain", "init_sheet"):
        res = plan.resources(rule)
        assert "slurm_account" not in res and "slurm_partition" not in res, res
        cmd = plan.sbatch(rule)
        assert value(cmd, "-A") is None and value(cmd, "-p") is None and "$" not in cmd, cmd
    assert value(plan.sbatch("pretrain"), "--gpus") == "1"


def test_local_profile_overrides_sizes_and_keeps_the_rest(plans):
    args = plans["local"].args
    assert args.executor == "slurm" and args.retries == 2 and Path(args.slurm_logdir) == Path("logs/slurm")
    assert args.slurm_no_account and args.slurm_status_command == "squeue"
    for rule in sorted(gpu_rules() & set(plans["local"].jobs)):
        cmd = plans["local"].sbatch(rule)
        assert value(cmd, "--gpus") == "1" and value(cmd, "-A") is None, cmd
        assert int(value(cmd, "--mem")) <= 4000, cmd
    # both profiles size the same rules, all of them rules of the workflow (unknown names are silently ignored)
    slurm, local = profile_yaml(SLURM), profile_yaml(LOCAL)
    rules = gpu_rules(gpu_only=False)
    assert set(plans["slurm"].jobs) - {"all"} <= rules
    assert set(slurm["set-resources"]) - {"decode_shard"} == set(local["set-resources"])
    for prof in (slurm, local):
        assert set(prof["set-resources"]) | set(prof["set-threads"]) <= rules
