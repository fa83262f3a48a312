"""How long the first command takes: ``import bindu_storage``, ``bindu-storage --help`` and
importing the storage, as ratios against a floor measured in the same run (``python -c pass``).

Each command runs ``--runs`` times in a fresh interpreter, alternating; medians are printed.
Run: ``python benchmarks/bench_import.py [--runs 15]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "floor: python -c pass": "pass",
    "import bindu_storage": "import bindu_storage",
    "bindu-storage --help": (
        "import sys; sys.argv = ['bindu-storage', '--help']\n"
        "from bindu_storage.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass"
    ),
    "from bindu_storage import PostgresStorage": "from bindu_storage import PostgresStorage",
    "import bindu_storage.analysis": "import bindu_storage.analysis",
}


def main(runs: int) -> None:
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):
        for name, code in COMMANDS.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            samples[name].append(time.perf_counter() - t0)
    floor = statistics.median(samples["floor: python -c pass"])
    print(f"{'command':44} {'median s':>9} {'- floor s':>10} {'÷ floor':>8}")
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"{name:44} {median:9.3f} {median - floor:10.3f} {median / floor:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    main(parser.parse_args().runs)
