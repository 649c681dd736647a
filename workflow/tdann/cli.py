"""Command line: ``tdann audit PATH... [--graph]``."""

from __future__ import annotations

import argparse
import sys

from . import provenance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tdann", description="Tools for tdann-workflow results.")
    sub = parser.add_subparsers(dest="command", required=True)
    aud = sub.add_parser("audit", help="recompute checksums along the provenance chain of result files")
    aud.add_argument("paths", nargs="+", help="result files (figures, tables, HDF5, weights)")
    aud.add_argument("--graph", action="store_true", help="print the provenance chain as a tree")
    args = parser.parse_args(argv)

    if args.graph:
        try:
            print(provenance.graph(args.paths))
        except provenance.AuditError as err:
            print(f"audit failed: {err}", file=sys.stderr)
            return 1
    try:
        checked = provenance.audit(args.paths)
    except provenance.AuditError as err:
        print(f"audit failed: {err}", file=sys.stderr)
        return 1
    print(f"audit ok: {len(checked)} files match their provenance records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
