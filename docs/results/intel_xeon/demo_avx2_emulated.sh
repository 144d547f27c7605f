#!/usr/bin/env bash
# AVX2 emulation on an AVX512/AMX Xeon: PyTorch's ATen kernels, oneDNN and MKL capped at AVX2.
# Times the README's first command on a clean clone, then the demo again (cache on disk).
# Usage: demo_avx2_emulated.sh [REPO (default: this checkout)] [CLONE_DIR (default: a new temp dir)]
set -euo pipefail
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
repo=${1:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
clone=${2:-$(mktemp -d)/clone}
if [[ -e "$clone" ]]; then echo "$clone exists: give a new folder to clone into" >&2; exit 2; fi
git clone -q "$repo" "$clone" && cd "$clone"
git log --oneline -1
lscpu | grep -E "Model name"
s=$(date +%s.%N)
python3 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e . && .venv/bin/medseg-r demo
e=$(date +%s.%N); echo "FIRST (install + demo, empty folder): $(awk "BEGIN {print $e - $s}") s"
.venv/bin/python -c "import torch; print('torch cpu capability:', torch.backends.cpu.get_cpu_capability())"
s=$(date +%s.%N)
.venv/bin/medseg-r demo
e=$(date +%s.%N); echo "SECOND (demo, data and encoded images on disk): $(awk "BEGIN {print $e - $s}") s"
