"""What the rule files declare, read from workflow/rules/*.smk (for the profile and SLURM tests)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def gpu_rules(gpu_only: bool = True) -> set[str]:
    """Rules that declare `gpu=1` in workflow/rules/*.smk (every rule with ``gpu_only=False``); a rule made in a
    loop over the streams (``name: f"<rule>_{_stream}"``) counts once per stream."""
    rules = set()
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        for block in re.split(r"^(?=[ \t]*(?:rule|checkpoint)\b)", smk.read_text(), flags=re.M):
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            loop = re.match(r'\s*rule:\s*name:\s*f"(\w+)_\{_stream\}"', block)
            names = [m.group(1)] if m else [f"{loop.group(1)}_{s}" for s in ("ventral", "dorsal")] if loop else []
            if not gpu_only or re.search(r"^\s+gpu=1,?\s*$", block, flags=re.M):
                rules.update(names)
    return rules


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
