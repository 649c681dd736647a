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


check_config()
