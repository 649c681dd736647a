# Shared helpers: result paths, wildcard constraints, the model sweep and which sheet goes with which model.
import copy
import os
import sys

import jinja2
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

# The library of this checkout, for this process and every script job (PYTHONPATH is inherited, and it precedes an
# editable install, which may point at another clone while Snakemake tracks this clone's files).
# The checkout's root from this file's place (workflow/rules/), not workflow.basedir: deployed as a module, that is
# the deploying workflow's folder.
CHECKOUT = os.path.abspath(os.path.join(str(workflow.current_basedir), "..", ".."))
LIBRARY_ROOT = os.path.join(CHECKOUT, "workflow")
sys.path.insert(0, LIBRARY_ROOT)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [LIBRARY_ROOT]
        + [
            p
            for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and p != LIBRARY_ROOT
        ]
    )
)
from tdann import naming, sources

R = config["results"]
STREAMS = list(config["streams"])
LIB = "workflow/tdann"
CONDA_ENV = "../../envs/tdann.yaml"  # relative to the rule files


wildcard_constraints:
    stream="|".join(STREAMS),
    alpha=naming.ALPHA_PATTERN,
    seed=r"\d+",
    shard=r"\d+",
    layer=r"layer[1-4]\.[01]",
    stimset="gratings|drifting|dots|categories",
    dataset=r"[A-Za-z0-9_-]+",
    species=r"[A-Za-z0-9_-]+",
    weights=naming.WEIGHTS_PATTERN,
    model=naming.MODEL_PATTERN,
    name=naming.PUBLISHED_NAME_PATTERN,


def lib(*modules):
    """Library modules a script imports and, transitively, everything they import: declared as inputs so that
    editing any of them reruns the step (:func:`tdann.sources.closure`)."""
    return [
        os.path.relpath(f)
        for f in sources.closure(modules, os.path.join(CHECKOUT, LIB))
    ]


def stream_cfg(stream):
    return config["streams"][stream]


# Params hold only what the step reads (Snakemake reruns a job when its params change, so passing a whole stream config
# would rerun the sheet, pretraining and SwapOpt after an edit of the stage-3 schedule).
NET_KEYS = ("arch", "width", "stem", "input_size", "clip_len")
SHEET_LAYER_KEYS = (
    "sheet_size",
    "neighborhood_width",
    "rf_overlap",
    "min_units",
    "max_units",
)


def _pick(mapping, keys):
    return {k: copy.deepcopy(mapping[k]) for k in keys if k in mapping}


def net_params(cfg):
    """The network a stream config builds (architecture, width, stem, input shape)."""
    return _pick(cfg, NET_KEYS)


def sheet_params(cfg):
    """What the retinotopic sheet depends on: the network's shape and each layer's sheet geometry."""
    layout = (
        {"layout": cfg["sheet_layout"]} if "sheet_layout" in cfg else {}
    )  # absent: the default, uniform
    layers = {
        k: dict(_pick(v, SHEET_LAYER_KEYS), **layout) for k, v in cfg["layers"].items()
    }
    return dict(net_params(cfg), layers=layers)


def train_params(cfg, stage):
    """What one training stage depends on: the network, the task and optimiser, the stage's own schedule and the
    layers' spatial-loss weights (the sheet geometry comes in with the sheet file)."""
    layers = {
        k: {"alpha_scale": v.get("alpha_scale", 1.0)} for k, v in cfg["layers"].items()
    }
    return dict(
        net_params(cfg),
        task=cfg["task"],
        optim=copy.deepcopy(cfg["optim"]),
        layers=layers,
        **{stage: copy.deepcopy(cfg[stage])},
    )


def analysis_params():
    """The analysis section less the keys only the responses rules read."""
    return {
        k: v
        for k, v in config["analysis"].items()
        if k not in ("batch_size", "response_dtype")
    }


def sweep_runs():
    return [
        naming.run_name(a, s)
        for a in config["sweep"]["alphas"]
        for s in config["sweep"]["seeds"]
    ]


def analysis_models():
    """Every model whose maps are measured: the sweep plus the controls (alpha = 0 pretrain, untrained nets)."""
    seeds = config["sweep"]["seeds"]
    untrained = [
        naming.untrained_name(sheet, s)
        for sheet in ("retinotopic", "swapopt")
        for s in seeds
    ]
    return sweep_runs() + ["pretrain"] + untrained


def sheet_of(model):
    """The cortical sheet (positions) a model id is analysed on (naming.sheet_of)."""
    return naming.sheet_of(model, config["sweep"]["positions"])


PUBLISHED = config["published"]
PUBLISHED_ONLY = (
    PUBLISHED["enabled"] and PUBLISHED["only"]
)  # the published networks, no training


def published_models():
    """Ids of the published networks (``published.models``) when ``published.enabled``."""
    if not PUBLISHED["enabled"]:
        return []
    return [naming.published_name(n) for n in PUBLISHED["models"]]


def published_info():
    """Published model id -> its config entry (label, alpha, files)."""
    return {naming.published_name(k): v for k, v in PUBLISHED.get("models", {}).items()}


def published_control(model):
    """The untrained control of a published network: untrained weights on the published positions."""
    return naming.untrained_name(model, PUBLISHED["control_seed"])


def model_layers(stream, model):
    """The layers a model's responses and metrics are taken on: the published layers for the published networks
    and their controls, and for every model when only those are built (published.only); every sheet layer of the
    stream otherwise."""
    if naming.is_published(model) or PUBLISHED_ONLY:
        return list(PUBLISHED["layers"])
    return stream_layers(stream)


def published_targets():
    if not PUBLISHED["enabled"]:
        return []
    figs = [f"{R}/figures/published_maps.{ext}" for ext in ("png", "pdf")]
    return [f"{R}/tables/published.csv"] + figs


def dataset_dirs(names):
    missing = [n for n in names if n not in config["datasets"]]
    if missing:
        raise WorkflowError(
            f"config: unknown dataset(s) {missing}; defined: {list(config['datasets'])}"
        )
    return [f"{R}/data/{n}" for n in names]


def twostream_inputs(wildcards):
    """The two-stream job's data: none for procedural shapes, the dataset folder for Fashion-MNIST."""
    ts = config["twostream"]
    if ts["objects"] == "fashion_mnist":
        return {"dataset": dataset_dirs([ts["dataset"]])[0]}
    return {}


def train_store(stream):
    """Training data of a stream: the image store (resnet18) or the clip store (r3d_18)."""
    if stream_cfg(stream)["arch"] == "r3d_18":
        return f"{R}/clips/clips.h5"
    return f"{R}/images/images.h5"


def log_path(rule_name, name):
    return f"{R}/logs/{rule_name}/{name}.log"


def bench_path(rule_name, name):
    return f"{R}/benchmarks/{rule_name}/{name}.tsv"


def eval_stimsets(stream):
    return list(stream_cfg(stream)["eval_stimuli"])


def stream_layers(stream):
    return list(stream_cfg(stream)["layers"])


def ringach_input():
    """The dataset folder holding the Ringach et al. (2002) raw file, when analysis.ringach_dataset names one."""
    name = config["analysis"].get("ringach_dataset")
    return dataset_dirs([name]) if name else []


def layer_hypercolumns(stream):
    """Configured hypercolumn width (mm) per layer, None where unset (the metrics then use the paper's ratio)."""
    return {k: v.get("hypercolumn_mm") for k, v in stream_cfg(stream)["layers"].items()}


def figure_targets():
    figs = [
        f"{R}/figures/{s}_{name}"
        for s in STREAMS
        for name in ("v1_orientation", "training_curves")
    ]
    if "dorsal" in STREAMS:
        figs.append(f"{R}/figures/dorsal_mt_direction")
    if "ventral" in STREAMS:
        figs.append(f"{R}/figures/ventral_vtc_categories")
    figs += [f"{R}/figures/alpha_tradeoff", f"{R}/figures/emergence"]
    figs += [f"{R}/figures/{s}_screening" for s in STREAMS]
    if config["spiking"]["enabled"]:
        figs.append(f"{R}/figures/spiking_speed_channels")
    if config["twostream"]["enabled"]:
        figs.append(f"{R}/figures/twostream_species")
    return [f"{f}.{ext}" for f in figs for ext in ("png", "pdf")]


def screened_weights():
    """The trained model that bidirectional screening looks at: the configured alpha, first seed."""
    return naming.run_name(config["screening"]["alpha"], config["sweep"]["seeds"][0])


def screened_untrained():
    """The untrained control of screening: the initial weights of the screened model's seed."""
    return naming.init_name(config["sweep"]["seeds"][0])


def mt_model_weights():
    """The dorsal model whose MT-like units are compared with the speed channels (none without a dorsal stream)."""
    if "dorsal" not in STREAMS:
        return []
    return f"{R}/models/dorsal/{screened_weights()}/weights.pt"


def all_targets():
    """What `snakemake` builds by default: tables and figures (the report is built from them)."""
    sweep = (
        [f"{R}/tables/settings_sweep.md"] if config["settings_sweep"]["enabled"] else []
    )
    if objectives_built():
        sweep.append(f"{R}/figures/objectives.png")
    if PUBLISHED_ONLY:
        return published_targets() + table_pages()
    return (
        [
            f"{R}/tables/tradeoff.csv",
            f"{R}/tables/learning.csv",
            f"{R}/tables/results.md",
            f"{R}/tables/summary.html",
        ]
        + figure_targets()
        + sweep
        + published_targets()
        + table_pages()
    )


def floc_input(wildcards):
    name = config["stimuli"].get("categories", {}).get("floc_dataset")
    if wildcards.stimset == "categories" and name:
        return dataset_dirs([name])
    return []


def metrics_inputs(wildcards):
    weights = naming.weights_of(wildcards.model)
    stimsets = eval_stimsets(wildcards.stream)
    return {
        "sheet": f"{R}/sheets/{wildcards.stream}/{sheet_of(wildcards.model)}.h5",
        "responses": [
            f"{R}/responses/{wildcards.stream}/{weights}/{s}.h5" for s in stimsets
        ],
        "stimuli": [f"{R}/stimuli/{wildcards.stream}/{s}.h5" for s in stimsets],
    }


SWEEP = config["settings_sweep"]
if SWEEP.get("variants") and 0 not in [float(a) for a in SWEEP["alphas"]]:
    raise WorkflowError("config: settings_sweep.alphas must include 0 (the control)")


def variant_cfg(stream, variant):
    """A stream's config with a settings-sweep variant's overrides merged in."""
    variants = SWEEP["variants"].get(stream, {})
    if variant not in variants:
        raise WorkflowError(
            f"config: no settings_sweep variant {variant!r} for stream {stream!r}; defined: {list(variants)}"
        )
    merged = copy.deepcopy(stream_cfg(stream))
    update_config(
        merged, variants[variant]
    )  # nested dicts merged, as Snakemake merges config files
    return merged


def sweep_stimset(stream):
    """Stimuli the sweep measures on: those of the V1-like map (naming.MAPS; docs/reference.md §4)."""
    return naming.map_stimset(stream, "V1")


def sweep_layers(stream):
    """The V1-like layer, and the MT-like layer for the dorsal stream."""
    keys = ["v1_layer"] + (["mt_layer"] if stream == "dorsal" else [])
    return list(dict.fromkeys(config["analysis"][k] for k in keys))


def sweep_variants():
    return [(s, v) for s in STREAMS for v in SWEEP.get("variants", {}).get(s, {})]


def sweep_models():
    alphas, seeds = SWEEP["alphas"], SWEEP["seeds"]
    trained = [naming.run_name(a, s) for a in alphas for s in seeds]
    return trained + [naming.untrained_name("retinotopic", s) for s in seeds]


def sweep_files(kind, variants=None):
    """(variant, path) of every sweep model's metrics table (kind "tables") or trained model's eval.json ("evals"),
    of all (stream, variant) pairs or of those given."""
    variants = sweep_variants() if variants is None else variants
    if kind == "tables":
        return [
            (v, f"{R}/sweep/{s}/{v}/metrics/{m}.csv")
            for s, v in variants
            for m in sweep_models()
        ]
    return [
        (v, f"{R}/sweep/{s}/{v}/{m}/eval.json")
        for s, v in variants
        for m in sweep_models()
        if not m.startswith("untrained-")
    ]


OBJECTIVE_NAMES = {"rel": "SL_Rel", "abs": "SL_Abs", "topo": "TopoLoss"}


def objectives_built():
    """Whether this run compares the topographic objectives (with the settings sweep, or on its own)."""
    ss = config["settings_sweep"]
    return bool((ss["enabled"] or ss["objectives_enabled"]) and objective_variants())


def objective_variants():
    """(stream, variant) pairs of settings_sweep.objectives: variants compared as topographic objectives."""
    pairs = [(s, v) for s, vs in SWEEP.get("objectives", {}).items() for v in vs]
    for s, v in pairs:
        variant_cfg(s, v)  # names an unknown variant
    return pairs


def objective_labels():
    """'stream/variant' -> the objective's name (from the variant's optim.sl_kind) for the objectives table."""
    return {
        f"{s}/{v}": OBJECTIVE_NAMES[variant_cfg(s, v)["optim"]["sl_kind"]]
        for s, v in objective_variants()
    }


# ----- report pages: every result table as an HTML page (rule table_page, workflow/rules/report.smk)
# name -> (title, report category, subcategory); which of them a run builds: table_pages().
TABLE_PAGES = {
    "learning": ("Did each network learn?", "both streams", "learning"),
    "tradeoff": ("The alpha trade-off, per model", "both streams", "alpha trade-off"),
    "results": (
        "Emergence tests: alpha > 0 against each control",
        "both streams",
        "results table",
    ),
    "comparisons": (
        "alpha > 0 against alpha = 0, paired by seed",
        "both streams",
        "results table",
    ),
    "pinwheels": ("Pinwheel densities", "both streams", "results table"),
    "anchors": ("V1 tuning against macaque V1", "both streams", "results table"),
    "twostream_summary": (
        "Two-stream species presets",
        "extras",
        "two-stream species model",
    ),
    "twostream_pairs": (
        "Two-stream presets compared",
        "extras",
        "two-stream species model",
    ),
    "settings_sweep": ("Settings sweep", "both streams", "settings sweep"),
    "objectives": (
        "Two topographic objectives",
        "both streams",
        "topographic objectives",
    ),
    "published": ("The published TDANN networks", "published TDANN networks", "tables"),
}
for _s in STREAMS:
    TABLE_PAGES[f"{_s}_screening_poles"] = (
        f"{_s}: signed poles per layer",
        _s,
        "screening",
    )
    TABLE_PAGES[f"{_s}_screening_vs_untrained"] = (
        f"{_s}: screening vs untrained",
        _s,
        "screening",
    )
    TABLE_PAGES[f"{_s}_synthesis_checks"] = (f"{_s}: synthesis checks", _s, "screening")


def table_pages():
    """The HTML pages this config's run builds (a table's page exists where its table does)."""
    if PUBLISHED_ONLY:
        names = ["published"]
    else:
        names = [
            "learning",
            "tradeoff",
            "results",
            "comparisons",
            "pinwheels",
            "anchors",
        ]
        names += [
            f"{s}_{t}"
            for s in STREAMS
            for t in ("screening_poles", "screening_vs_untrained", "synthesis_checks")
        ]
        names += ["twostream_summary", "twostream_pairs"] * config["twostream"][
            "enabled"
        ]
        names += ["settings_sweep"] * config["settings_sweep"]["enabled"]
        names += ["published"] * PUBLISHED["enabled"]
        names += ["objectives"] * objectives_built()
    return [f"{R}/tables/html/{n}.html" for n in names]


def table_description(name):
    """A table's description: its caption file rendered with this run's config, as the report renders captions."""
    stem = name
    for s in STREAMS:
        stem = stem.removeprefix(f"{s}_")
    path = os.path.join(CHECKOUT, "workflow", "report", f"table_{stem}.rst")
    if not os.path.exists(path):
        raise WorkflowError(f"report: table {name!r} has no description {path}")
    return jinja2.Template(open(path).read()).render(snakemake={"config": config})
