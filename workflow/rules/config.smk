# The config: schema validation (defaults filled in; an error names the key in a few lines, not the schema dump
# that Snakemake's validate prints) and the checks a schema cannot make, before any job runs.
import os
import re
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = "../schemas/config.schema.yaml"  # relative to this file


def short_validation_error(text):
    """The culprit of a jsonschema error: its message, the config path and the offending value (if short)."""
    lines = text.splitlines()
    message = next(
        (l for l in lines if l.startswith("ValidationError:")), ""
    ).removeprefix("ValidationError:")
    where, value = "the top level", ""
    for i, line in enumerate(lines):
        m = re.match(r"On instance((\[[^\]]*\])*):", line)
        if m:
            keys = re.findall(r"\[([^\]]*)\]", m.group(1))
            where = ".".join(k.strip("'\"") for k in keys) or "the top level"
            rest = " ".join(l.strip() for l in lines[i + 1 : i + 4] if l.strip())
            value = f" (value: {rest})" if keys and len(rest) < 120 else ""
            break
    return f"config: {message.strip() or text.strip()[:300]} at {where}{value}"


def check_config():
    try:
        validate(config, SCHEMA)
    except WorkflowError as err:
        raise WorkflowError(short_validation_error(str(err))) from None
    for name, entry in config["datasets"].items():
        if entry["kind"] == "local":
            path = entry.get("path")
            if not path:
                raise WorkflowError(
                    f"config: datasets.{name}.path is required for kind: local"
                )
            if not os.path.isdir(
                path
            ):  # a dry run too: it would plan jobs that cannot run
                raise WorkflowError(
                    f"config: datasets.{name}.path {path!r} is not a folder"
                )
        if entry["kind"] == "url" and not entry.get("urls"):
            raise WorkflowError(
                f"config: datasets.{name}.urls is required for kind: url"
            )

    check_published(config["published"])
    check_twostream(config["twostream"])


def check_twostream(ts):
    """Fashion-MNIST objects need a datasets entry that holds the IDX files."""
    if not ts["enabled"] or ts["objects"] != "fashion_mnist":
        return
    if ts.get("dataset") not in config["datasets"]:
        raise WorkflowError(
            f"config: twostream.dataset {ts.get('dataset')!r} is not a datasets entry "
            f"(objects: fashion_mnist reads its IDX files); defined: {list(config['datasets'])}"
        )


def check_published(pub):
    """The published networks are full-width ResNet-18s: the ventral stream must build that network and measure
    the V1-like and VTC-like sets on the layers the position files are read for."""
    if not pub["enabled"]:
        return
    if not pub.get("models"):
        raise WorkflowError("config: published.models must name at least one network")
    if pub.get("dataset") not in config["datasets"]:
        raise WorkflowError(
            f"config: published.dataset {pub.get('dataset')!r} is not a datasets entry "
            f"(defined: {list(config['datasets'])})"
        )
    ventral = config["streams"].get("ventral")
    if ventral is None:
        raise WorkflowError("config: published networks need streams.ventral")
    want = {"arch": "resnet18", "width": 1.0, "stem": "standard"}
    wrong = {k: ventral.get(k) for k, v in want.items() if ventral.get(k) != v}
    if wrong:
        raise WorkflowError(
            f"config: published networks are {want}; streams.ventral has {wrong} "
            "(use config/published.yaml)"
        )
    missing = [l for l in pub["layers"] if l not in ventral["layers"]]
    if missing:
        raise WorkflowError(
            f"config: published.layers {missing} are not layers of streams.ventral"
        )
    need = {config["analysis"]["v1_layer"], config["analysis"]["vtc_layer"]}
    if not need <= set(pub["layers"]):
        raise WorkflowError(
            f"config: published.layers must include the V1-like and VTC-like layers {sorted(need)}"
        )
    if not {"gratings", "categories"} <= set(ventral["eval_stimuli"]):
        raise WorkflowError(
            "config: published networks are measured on gratings and categories: "
            "add them to streams.ventral.eval_stimuli"
        )


check_config()
