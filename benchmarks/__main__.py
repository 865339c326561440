"""`python -m benchmarks NAME [options]`: run one benchmark; `NAME --help` lists its options."""

import importlib
import sys

# The name a benchmark is run by, and its module.
BENCHMARKS = {
    "mass_upload": "mass_upload",
    "scale": "scaling",
    "lake": "lake_queries",
    "reconciliation": "reconciliation",
    "soda3_formats": "soda3_formats",
    "bookkeeping": "bookkeeping",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    name, *options = argv
    module = importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")
    sys.argv = [f"-m benchmarks {name}", *options]  # argparse reads the options; the stamp, all
    return module.main()


sys.exit(main(sys.argv[1:]))
