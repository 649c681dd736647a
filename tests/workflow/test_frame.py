"""The workflow frame: config validation, dry runs of both configs, lint, formatting, environment lock."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from checkout import copy_checkout

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
BIN = Path(sys.executable).parent


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def snakemake(*args: str, cwd: Path = ROOT, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_default_config_validates_and_gets_defaults():
    cfg = default_config()
    del cfg["swapopt"]["seed"]
    validate(cfg, SCHEMA)
    assert cfg["swapopt"]["seed"] == 0
    assert cfg["streams"]["ventral"]["optim"]["sl_kind"] == "rel"


@pytest.mark.parametrize(
    "edit, culprit",
    [
        (lambda c: c["sweep"].update(alphas=[0.0, -0.25]), "-0.25"),
        (lambda c: c["streams"]["ventral"]["train"].update(batch_size=0), "batch_size"),
        (lambda c: c["streams"]["dorsal"].update(width="wide"), "wide"),
        (lambda c: c["swapopt"].update(atempts_per_window=5), "atempts_per_window"),
        (lambda c: c["streams"]["ventral"]["layers"].update({"layer9.0": {"sheet_size": 1, "neighborhood_width": 1}}),
         "layer9.0"),
        (lambda c: c["datasets"].update(bad={"kind": "url", "urls": [{"url": "http://x", "sha256": "abc"}]}), "abc"),
    ],
)
def test_bad_config_is_rejected_naming_the_key(edit, culprit):
    cfg = default_config()
    edit(cfg)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert culprit in str(err.value)


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    cfg = default_config()
    cfg["results"] = str(tmp_path / "results")
    cfg["sweep"]["alphas"] = [-1.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("--configfile", str(bad), "--cores", "1")
    assert out.returncode != 0
    assert "-1.0" in out.stderr and "alphas" in out.stderr
    assert not (tmp_path / "results").exists()


def _config_file(tmp_path, edit) -> Path:
    cfg = default_config()
    cfg["results"] = str(tmp_path / "results")
    edit(cfg)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(bogus_key=1), "'bogus_key' was unexpected) at the top level"),
        (lambda c: c["sweep"].update(alphas=[0.0, -0.25]), "at sweep.alphas.1"),
        (lambda c: c["datasets"].update(mine={"kind": "local"}), "datasets.mine.path is required"),
        (lambda c: c["datasets"].update(mine={"kind": "local", "path": "/no/such/folder"}),
         "datasets.mine.path '/no/such/folder' is not a folder"),
        (lambda c: c["twostream"].update(objects="fashion_mnist"), "twostream.dataset None is not a datasets entry"),
    ],
)
def test_config_errors_are_short_and_name_the_key_before_any_job(tmp_path, edit, message):
    out = snakemake("-n", "--configfile", str(_config_file(tmp_path, edit)), "--cores", "1")
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert message in text, text[-2000:]
    assert len(text.splitlines()) < 15, text[:3000]  # was ~870 lines of schema dump
    assert not (tmp_path / "results").exists()


def test_fashion_mnist_objects_plan_the_dataset_into_the_two_stream_jobs(tmp_path):
    from fmnist_fixture import write_fashion_mnist

    folder = write_fashion_mnist(tmp_path / "fmnist", n_train=20, n_test=10)
    edit = lambda c: (c["datasets"].update(fmnist={"kind": "local", "path": str(folder)}),  # noqa: E731
                      c["twostream"].update(objects="fashion_mnist", dataset="fmnist"))
    out = snakemake("-n", "--configfile", str(_config_file(tmp_path, edit)), "--cores", "1",
                    str(tmp_path / "results" / "twostream" / "mouse.csv"))
    assert out.returncode == 0, out.stderr[-3000:]
    plan = out.stdout
    assert "rule fetch_dataset" in plan and "fmnist" in plan and "rule two_stream" in plan, plan[-3000:]


def test_an_alpha_of_any_size_plans_its_training_run(tmp_path):
    edit = lambda c: c["sweep"].update(alphas=[0.0, 0.00001], seeds=[0])  # noqa: E731
    out = snakemake("-n", "--configfile", str(_config_file(tmp_path, edit)), "--cores", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "models/ventral/a0.00001_s0/weights.pt" in out.stdout
    assert "1e-05" not in out.stdout


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml", "config/five_seeds.yaml"])
def test_dry_run_builds_the_dag(configfile, tmp_path):
    cfg = yaml.safe_load((ROOT / configfile).read_text())
    extra = []
    for name, entry in cfg.get("datasets", {}).items():  # local data folders must exist (an empty one will do)
        if entry.get("kind") == "local":
            (tmp_path / name).mkdir()
            extra.append(tmp_path / "local.yaml")
            cfg["datasets"][name]["path"] = str(tmp_path / name)
    if extra:
        extra[0].write_text(yaml.safe_dump({"datasets": cfg["datasets"]}))
    out = snakemake("-n", "--configfile", configfile, *map(str, extra[:1]), "--config", f"results={tmp_path}",
                    "--quiet", "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    for rule in ("pretrain", "swapopt", "train", "metrics"):
        assert re.search(rf"^{rule}\s+\d+", out.stdout + out.stderr, re.M), rule


def _published_overlay(tmp_path, **published):
    """Local folders for config/published.yaml's datasets (empty ones will do for a dry run)."""
    cfg = yaml.safe_load((ROOT / "config/published.yaml").read_text())
    for name in cfg["datasets"]:
        (tmp_path / name).mkdir(exist_ok=True)
    overlay = {"datasets": {n: {"kind": "local", "path": str(tmp_path / n)} for n in cfg["datasets"]},
               "results": str(tmp_path / "results")}
    if published:
        overlay["published"] = published
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(overlay))
    return path


def test_published_config_plans_the_published_networks_and_no_training(tmp_path):
    out = snakemake("-n", "--configfile", "config/published.yaml", str(_published_overlay(tmp_path)), "--quiet",
                    "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, re.M))
    n = len(yaml.safe_load((ROOT / "config/published.yaml").read_text())["published"]["models"])
    assert int(counts["import_published"]) == n and int(counts["metrics"]) == 2 * n
    assert {"fig_published", "published_table", "init_weights"} <= set(counts)
    assert not {"pretrain", "swapopt", "train", "init_sheet"} & set(counts), counts


def test_published_networks_on_a_reduced_stream_are_refused(tmp_path):
    local = _published_overlay(tmp_path, enabled=True, dataset="tdann",
                               models={"x": {"checkpoint": "c", "positions": "p"}})
    out = snakemake("-n", "--configfile", str(local))  # the embedded default's ventral stream, not published.yaml's
    assert out.returncode != 0
    assert "streams.ventral has {'width': 0.5}" in out.stdout + out.stderr, (out.stdout + out.stderr)[-2000:]


def test_settings_sweep_plans_every_variant_alpha_and_seed(tmp_path):
    out = snakemake("settings_sweep", "-n", "--config", f"results={tmp_path}", "--quiet", "rules")
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = default_config()["settings_sweep"]
    n_variants = sum(len(v) for v in sweep["variants"].values())
    per_variant = len(sweep["alphas"]) * len(sweep["seeds"])
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", out.stdout + out.stderr, re.M))
    assert int(counts["sweep_train"]) == n_variants * per_variant
    assert int(counts["sweep_metrics"]) == n_variants * (per_variant + len(sweep["seeds"]))
    assert not {"pretrain", "swapopt", "train"} & set(counts), counts  # from scratch: no stage 1, no SwapOpt


def test_a_sweep_without_alpha_zero_is_refused(tmp_path):
    cfg = default_config()
    cfg["results"] = str(tmp_path / "results")
    cfg["settings_sweep"]["alphas"] = [0.25, 2.5]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = snakemake("settings_sweep", "-n", "--configfile", str(bad))
    assert out.returncode != 0 and "settings_sweep.alphas must include 0" in out.stdout + out.stderr


def test_snakemake_lint_is_clean():
    out = snakemake("--lint")
    assert out.returncode == 0
    assert "Congratulations" in out.stdout + out.stderr, (out.stdout + out.stderr)[-3000:]


def test_snakefmt_check_is_clean():
    out = subprocess.run([str(BIN / "snakefmt"), "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_ruff_is_clean():
    """Lint and import order of the library, scripts and tests (rules in pyproject.toml)."""
    out = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "workflow", "tests"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def test_mypy_is_clean():
    """Type check of the library (settings in pyproject.toml)."""
    out = subprocess.run([str(BIN / "mypy"), "--no-incremental"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr


def test_rules_that_declare_library_inputs_declare_every_module_their_script_imports():
    """Cheap rules (tables, figures, metrics) declare their scripts' library modules as inputs, so that editing one
    reruns them; a module missing there would leave stale figures. provenance (every step's plumbing) and the
    expensive steps (training, SwapOpt, responses: rerun on purpose only) are exempt."""
    from rulefiles import declared_lib, rule_blocks
    from tdann import sources

    missing = {}
    for rule, block in rule_blocks().items():
        script, names = declared_lib(block)
        if script and names:
            covered = {p.stem if p.parent.name == "tdann" else p.parent.name for p in sources.closure(sorted(names))}
            lacking = sources.script_imports(ROOT / f"workflow/scripts/{script}.py") - covered - {"provenance"}
            if lacking:
                missing[rule] = sorted(lacking)
    assert not missing, f"rules whose lib() misses modules their script imports: {missing}"


def test_conda_env_matches_pip_lock():
    lock = {}
    for line in (ROOT / "envs/requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==")
            lock[name.lower()] = ver.strip()
    env = yaml.safe_load((ROOT / "envs/tdann.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert len(pip) >= 10
    for spec in pip:
        name, ver = spec.split("==")
        assert lock.get(name.lower()) == ver, f"{name}: tdann.yaml {ver} vs requirements.txt {lock.get(name.lower())}"
    assert lock["torch"] == "2.14.1" and lock["torchvision"] == "0.29.1"


def test_the_lock_file_names_every_package_the_environment_has():
    """`make env` installs envs/requirements.txt with dependencies: a package pip pulled in that the lock does not pin
    (mypy 2.4 brought ast_serialize) would make environments differ between machines."""
    import importlib.metadata

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    lock = {norm(line.split("==")[0]): line.split("==")[1].strip()
            for line in (ROOT / "envs/requirements.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    installed = {norm(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    unpinned = sorted(n for n in installed if n not in lock and n not in ("tdann", "pip", "setuptools", "wheel"))
    assert not unpinned, f"installed but not in envs/requirements.txt: {unpinned}"
    wrong = sorted(f"{n} {installed[n]} (lock {lock[n]})" for n in installed if n in lock and installed[n] != lock[n])
    assert not wrong, f"installed at another version than the lock: {wrong}"


def test_training_defaults_are_the_schemas():
    """TrainConfig.from_stream passes every optim key from the validated config, so the schema's defaults are the
    ones that run; TrainConfig's own defaults (for direct library use) must not say otherwise."""
    import dataclasses

    from tdann.training import TrainConfig

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    optim = schema["definitions"]["stream"]["properties"]["optim"]["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    with_default = {k: v["default"] for k, v in optim.items() if "default" in v}
    assert with_default and set(with_default) <= set(fields)
    assert {k: fields[k] for k in with_default} == with_default


def test_every_rule_has_log_and_benchmark():
    text = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    rules = re.split(r"\nrule ", text)[1:]
    assert rules
    for body in rules:
        name = body.split(":", 1)[0]
        assert "\n    log:" in body, name
        assert "\n    benchmark:" in body, name


def test_config_readme_documents_every_schema_key_in_its_own_section():
    """config/README.md has a section per top-level key (`## `key``); every key below it, nested or reached through
    a definition, is named in that section, not merely somewhere in the file."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    doc = (ROOT / "config/README.md").read_text()
    sections = {}
    for part in re.split(r"^## ", doc, flags=re.M)[1:]:
        m = re.match(r"`(\w+)`", part)
        sections[m.group(1) if m else part.split("\n")[0]] = part

    def keys_under(node) -> set[str]:
        if not isinstance(node, dict):
            return set()
        out = keys_under(schema["definitions"][node["$ref"].split("/")[-1]]) if "$ref" in node else set()
        for k, v in node.get("properties", {}).items():
            out |= {k} | keys_under(v)
        for key in ("additionalProperties", "items"):
            out |= keys_under(node.get(key))
        return out

    missing = []
    for top, node in schema["properties"].items():
        if top not in sections:
            missing += [] if f"`{top}`" in sections.get("Top level", "") else [top]
            continue
        missing += [f"{top}.{k}" for k in sorted(keys_under(node)) if f"`{k}`" not in sections[top]]
    assert not missing, f"config/README.md does not document {missing} in their sections"


def schema_properties() -> list[tuple[list[str], object]]:
    """Every property of the config schema as (path, its schema node), through definitions, mappings and lists."""
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    out: list[tuple[list[str], object]] = []

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for k, v in node.get("properties", {}).items():
            out.append((path + [k], v))
            walk(v, path + [k])
        for key in ("additionalProperties", "items"):
            walk(node.get(key), path + ["*"])
        for k, v in node.get("definitions", {}).items():
            walk(v, ["definitions", k])

    walk(schema, [])
    return out


def test_every_schema_key_has_a_description():
    """The workflow catalog renders the schema's descriptions as the parameter table."""
    missing = [".".join(path) for path, node in schema_properties()
               if not (isinstance(node, dict) and str(node.get("description", "")).strip())]
    assert not missing, f"schema keys without a description: {missing}"


def test_a_second_clone_runs_its_own_library(tmp_path):
    """The editable install points at this checkout; a job run from another clone must import that clone's tdann
    (Snakemake tracks the clone's files), not the installed one."""
    clone = tmp_path / "clone"
    copy_checkout(clone)
    mark = tmp_path / "imported.txt"
    init = clone / "workflow/tdann/__init__.py"
    marker = "\nimport os as _os\nopen(%r, 'a').write('%%d %%s\\n' %% (_os.getpid(), __file__))\n" % str(mark)  # noqa: UP031
    init.write_text(init.read_text() + marker)
    (clone / "small.yaml").write_text(yaml.safe_dump({"datasets": {"deadleaves": {"n_images": 4, "size": 24}}}))
    out = snakemake("--cores", "1", "--configfile", "small.yaml", "--", "results/data/deadleaves", cwd=clone)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = [line.split(" ", 1) for line in mark.read_text().splitlines()]
    assert {path for _, path in lines} == {str(init)}
    assert len({pid for pid, _ in lines}) >= 2, lines  # Snakemake itself and the job's script process


def test_citations_point_inside_the_repository():
    """Docstrings cite docs/reference.md (the project's own reference), never a file a clone does not have."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sections = set(re.findall(r"^## §(\d+)", (ROOT / "docs/reference.md").read_text(), re.M))
    assert len(sections) >= 10 and sections == {str(i) for i in range(1, len(sections) + 1)}
    for f in files:
        path = ROOT / f
        if path.suffix not in (".py", ".smk", ".md", ".yaml", ".rst", ".txt") or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        assert "REFERENCE" + ".md" not in text and "../" + "shared" not in text, f
        for cited in re.findall(r"docs/reference\.md §(\d+)", text):
            assert cited in sections, (f, cited)


def test_the_workflow_deploys_as_a_module_and_runs_this_checkouts_library(tmp_path):
    """Deployed as `snakedeploy deploy-workflow` writes it (a Snakefile elsewhere that uses this one through the
    `module` directive, rules prefixed): the default plans in full and a job runs, importing this checkout's tdann
    and writing its log and provenance record in the deploying folder."""
    import json

    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text((ROOT / "config/config.yaml").read_text())
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        f'module tdann:\n    snakefile:\n        "{ROOT / "Snakefile"}"\n    config:\n        config\n\n\n'
        "use rule * from tdann as tdann_*\n")
    dry = snakemake("-n", "--cores", "1", cwd=tmp_path)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-3000:]
    assert "tdann_train" in dry.stdout and "tdann_table_page" in dry.stdout
    target = "results/stimuli/ventral/gratings.h5"
    job = snakemake("--cores", "1", target, cwd=tmp_path)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    log = (tmp_path / "results/logs/stimulus_set/ventral_gratings.log").read_text()
    assert f"wrote {target}" in log
    record = json.loads((tmp_path / (target + ".prov.json")).read_text())
    assert record["rule"] == "tdann_stimulus_set"


def test_the_container_recipe_installs_exactly_the_lock_file():
    """envs/Dockerfile (not built here: no container runtime) starts from Debian with Python 3.11, the version the
    lock file was made for, and installs envs/requirements.txt and nothing else."""
    text = (ROOT / "envs/Dockerfile").read_text()
    assert re.search(r"^FROM debian:bookworm", text, re.M)  # bookworm's python3 is 3.11
    assert "COPY envs/requirements.txt" in text and re.search(r"pip install .*-r /opt/tdann/requirements.txt", text)
    assert len(re.findall(r"pip install", text)) == 1
    env = yaml.safe_load((ROOT / "envs/tdann.yaml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_cheap_jobs_are_local_rules_and_no_gpu_rule_is():
    """On a cluster, tables, report pages and figures run where Snakemake runs; GPU steps never do."""
    from rulefiles import gpu_rules

    text = (ROOT / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", text, flags=re.M)
    assert block, "the Snakefile declares no localrules"
    local = set(re.findall(r"(\w+),", block.group(1)))
    every = gpu_rules(gpu_only=False)
    assert local - {"all"} <= every, sorted(local - every - {"all"})  # no typo: each is a rule
    cheap = {r for r in every if r.startswith("fig_") or r.endswith("_table") or r == "table_page"}
    assert cheap <= local, sorted(cheap - local)
    assert not local & gpu_rules(), sorted(local & gpu_rules())


def test_every_schema_key_is_read_somewhere():
    """A key nothing reads is a config that lies (figures.formats was one): each key must appear in the workflow's
    code as a quoted name, a keyword argument, an attribute, or a TrainConfig field it is passed into."""
    keys = {(path[-1], ".".join(path)) for path, _ in schema_properties()}
    files = [*(ROOT / "workflow").rglob("*.py"), *(ROOT / "workflow/rules").glob("*.smk"), ROOT / "Snakefile"]
    code = "\n".join(p.read_text() for p in files)
    fields = set(re.findall(r"^    (\w+): ", (ROOT / "workflow/tdann/training/config.py").read_text(), re.M))
    unread = sorted(path for k, path in keys if k not in fields and not re.search(
        rf"""["']{re.escape(k)}["']|\b{re.escape(k)}=|\.{re.escape(k)}\b""", code))
    assert not unread, f"schema keys no code reads: {unread}"
