"""What the rule files declare, read from workflow/rules/*.smk (for the profile and SLURM tests)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gpu_rules(gpu_only: bool = True) -> set[str]:
    """Rules that declare `gpu=1` in workflow/rules/*.smk (every rule with ``gpu_only=False``); a rule made in a
    loop over the streams (``name: f"<rule>_{_stream}"``) counts once per stream, and ``use rule A as B with:``
    makes B a GPU rule where A is one (it inherits A's resources unless it sets its own)."""
    rules, gpu, derived = set(), set(), {}
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        for block in re.split(r"^(?=[ \t]*(?:rule|checkpoint|use rule)\b)", smk.read_text(), flags=re.M):
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            loop = re.match(r'\s*rule:\s*name:\s*f"(\w+)_\{_stream\}"', block)
            use = re.match(r"\s*use rule (\w+) as (\w+)", block)
            names = [m.group(1)] if m else [f"{loop.group(1)}_{s}" for s in ("ventral", "dorsal")] if loop else []
            if use:
                names = [use.group(2)]
                derived[use.group(2)] = use.group(1)
            rules.update(names)
            if re.search(r"^\s+gpu=1,?\s*$", block, flags=re.M):
                gpu.update(names)
    gpu |= {new for new, base in derived.items() if base in gpu}
    return gpu if gpu_only else rules


def rule_blocks() -> dict[str, str]:
    """Rule name -> its text, for the rules written ``rule <name>:`` in workflow/rules/*.smk."""
    blocks = {}
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        for block in re.split(r"^(?=[ \t]*(?:rule|checkpoint|use rule)\b)", smk.read_text(), flags=re.M):
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if m:
                blocks[m.group(1)] = block
    return blocks


def declared_lib(block: str) -> tuple[str | None, set[str]]:
    """(the rule's script name or None, the modules named in its ``lib(...)`` inputs)."""
    script = re.search(r'script:\s*"\.\./scripts/(\w+)\.py"', block)
    names = set(re.findall(r'"(\w+)"', " ".join(re.findall(r"\blib\(([^)]*)\)", block))))
    return (script.group(1) if script else None), names
