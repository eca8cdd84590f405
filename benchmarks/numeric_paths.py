"""Which environment variables change floating-point results on this machine.

Runs a few probes (float64 and float32 matmuls, a CG solve, vectorised float32
kernels, an MLP forward pass) in a fresh process under each setting of
``MKL_CBWR`` and ``ATEN_CPU_CAPABILITY`` and prints, to 17 digits, where each
differs from this CPU's own path. A setting whose process crashes (for example
``ATEN_CPU_CAPABILITY=avx512`` on a CPU without AVX-512) is reported as such.

    .venv/bin/python benchmarks/numeric_paths.py
"""

import os
import subprocess
import sys

SETTINGS = [
    "",
    "MKL_CBWR=COMPATIBLE",
    "MKL_CBWR=SSE4_2",
    "MKL_CBWR=AVX2",
    "MKL_CBWR=AVX512",
    "ATEN_CPU_CAPABILITY=default",
    "ATEN_CPU_CAPABILITY=avx2",
    "ATEN_CPU_CAPABILITY=avx512",
]

PROBE = r"""
import torch
from ppo_helpers.trpo import conjugate_gradient
torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
a = torch.randn(64, 64, generator=g, dtype=torch.float64)
b = torch.randn(64, 64, generator=g, dtype=torch.float64)
m = a @ a.T / 64 + 0.1 * torch.eye(64, dtype=torch.float64)
v = torch.randn(64, generator=g, dtype=torch.float64)
x = torch.linspace(-3, 3, 100_000)
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 4)
)
cg = conjugate_gradient(lambda u: m @ u, v, iters=64, residual_tol=0.0)
probes = {
    "float64 matmul (64x64) sum": (a @ b).sum(),
    "float32 matmul (64x64) sum": (a.float() @ b.float()).sum(),
    "float64 solve, first entry": torch.linalg.solve(m, v)[0],
    "float64 CG, 64 iterations, first entry": cg[0],
    "float32 sum of tanh over 100k": torch.tanh(1.37 * x).sum(),
    "float32 log_softmax sum": torch.log_softmax(x.view(1000, 100), -1).sum(),
    "float32 MLP forward sum": net(torch.randn(2048, 8)).sum(),
}
for name, value in probes.items():
    print(f"{name}\t{value.item():.17g}")
"""


def run(setting: str) -> dict[str, str] | None:
    env = dict(os.environ)
    env.pop("MKL_CBWR", None)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if setting:
        key, value = setting.split("=")
        env[key] = value
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None
    return dict(line.split("\t") for line in proc.stdout.strip().splitlines())


def main() -> None:
    native = run("")
    if native is None:
        sys.exit("the probe failed on this CPU's own path")
    for name, value in native.items():
        print(f"{'native':<28} {name:<40} {value}")
    for setting in SETTINGS[1:]:
        results = run(setting)
        if results is None:
            print(f"{setting:<28} crashed (the CPU lacks this path)")
            continue
        changed = {k: v for k, v in results.items() if v != native[k]}
        if not changed:
            print(f"{setting:<28} identical to native")
        for name, value in changed.items():
            print(f"{setting:<28} {name:<40} {value}")


if __name__ == "__main__":
    main()
