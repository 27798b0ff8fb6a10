"""Peak memory of one compare.py run against the suite's own estimate, in a fresh process.

    python benchmarks/memory_probe.py --backends numpy,torch --n-samples 1000000 --batch-size 800000

The run is inline (`--executor inline`): its training happens in this process, where it is measured.
Prints one JSON line: the resident memory that importing and warming up the frameworks added
(`imports_mb`), the growth of the peak over that baseline during the run (`growth_mb`), and the
suite's estimate of both (`import_estimate_mb`, `estimate_mb`), in MB.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend_compare import cli  # noqa: E402
from backend_compare.backends import get_backend, mlp_spec  # noqa: E402
from backend_compare.comparison import memory  # noqa: E402

MB = 2**20
FRAMEWORKS = "the frameworks"


def _status(field: str) -> int:
    return int(Path("/proc/self/status").read_text().split(f"{field}:")[1].split()[0]) * 1024


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from the current size


def main(argv: list[str]) -> int:
    names = argv[argv.index("--backends") + 1].split(",")
    _reset_peak()
    before = _status("VmRSS")
    for name in names:  # import each framework and run one step of a tiny model: its fixed cost
        model = get_backend(name)(mlp_spec(2, (3,), 1, "tanh"))
        model.load(np.ones((4, 2)), np.ones((4, 1)))
        model.train_epoch([np.arange(4)])
    del model
    _reset_peak()
    baseline = _status("VmHWM")
    parts: list[memory.Part] = []
    check = memory.check_fits
    memory.check_fits = lambda estimated, free: (parts.extend(estimated), check(estimated, free))[1]
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main([*argv, "--quiet", "--executor", "inline"])  # the training measured is in this process
    growth = _status("VmHWM") - baseline
    imports = sum(part.bytes for part in parts if part.what == FRAMEWORKS)
    print(json.dumps({"code": code, "imports_mb": (baseline - before) / MB, "growth_mb": growth / MB,
                      "import_estimate_mb": imports / MB,
                      "estimate_mb": (sum(part.bytes for part in parts) - imports) / MB}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
