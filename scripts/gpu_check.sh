#!/usr/bin/env bash
# GPU check: the CUDA-relevant tests, then benchmarks/bench_gpu.py, on a machine with an NVIDIA GPU.
#
# Meant for a bare GPU machine whose python3 (3.12) already has a CUDA build of torch, numpy, pandas,
# scipy, scikit-learn, h5py, safetensors, pyarrow and pytest, but none of rnaimg's other
# dependencies: those travel as wheels in .whl/ (ignored by git), made on a machine with network
# access, from the repository root:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#       captum==0.9.0 dask==2026.8.0 distributed==2026.8.0 zarr==3.1.6 numcodecs==0.16.6 partd==1.4.2 \
#       locket==1.0.0 tblib==3.2.2 tornado==6.6.1 zict==3.0.0 donfig==0.8.1.post1 google-crc32c==1.9.0 \
#       anndata==0.12.19 array-api-compat==1.16.0 legacy-api-wrap==1.5 natsort==8.4.0 \
#       scverse-misc==0.0.3 session-info2==0.4.1
#
# openTSNE, minisom, umap-learn and streamlit are not carried: nothing checked here imports them
# (rnaimg_core imports each only inside the generator or page that needs it).
#
# Usage (repository root): OUT=/some/folder bash scripts/gpu_check.sh
# Writes $OUT/log.txt (everything printed), $OUT/pytest.xml and $OUT/results_gpu.json.
# Exit status: 0 when the tests and the benchmark both finished without error, else the first failure's.
# Time limits (seconds, overridable): GPU_CHECK_TEST_TIMEOUT (120) and GPU_CHECK_BENCH_TIMEOUT (180):
# about 5 minutes in all with the install and imports.
set -u -o pipefail

OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
TEST_TIMEOUT=${GPU_CHECK_TEST_TIMEOUT:-120}
BENCH_TIMEOUT=${GPU_CHECK_BENCH_TIMEOUT:-180}

check() {
    local tests_rc=0 bench_rc=0
    export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
    echo "== $(date -u +%FT%TZ) gpu_check on $(hostname), $(nproc) cores, $(uname -m)"
    nvidia-smi -L || echo "nvidia-smi: not available"

    if compgen -G ".whl/*.whl" > /dev/null; then
        echo "== installing $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || return 3
        export PYTHONPATH=/tmp/site:$PWD
    else
        echo "== no .whl/ folder: the attribution and big-run parts will fail on their imports"
        export PYTHONPATH=$PWD
    fi

    python3 - <<'EOF' || return 4
import importlib.metadata as md, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| available", torch.cuda.is_available(), "| threads", torch.get_num_threads())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", "| cudnn", torch.backends.cudnn.version(),
          "| cudnn tf32", torch.backends.cudnn.allow_tf32)
import rnaimg_core
print("rnaimg_core", rnaimg_core.__version__, "from", rnaimg_core.__file__)
for name in ("numpy", "numba", "scipy", "pandas", "scikit-learn", "h5py", "pyarrow", "safetensors", "captum", "dask",
             "distributed", "zarr", "numcodecs", "anndata", "pytest", "pytest-timeout", "hypothesis"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} MISSING")
EOF

    # No -x: this machine is lent for minutes, so one run reports every failure; each test is capped,
    # and -v logs each result as it comes, so a run stopped by the time limit still says what passed.
    echo "== $(date -u +%T) tests"
    timeout "$TEST_TIMEOUT" python3 -m pytest -v -p no:cacheprovider -o addopts="" -ra --timeout=90 \
        --junitxml="$OUT/pytest.xml" \
        tests/test_cuda.py tests/test_model.py tests/test_layout_core.py tests/test_attribution.py
    tests_rc=$?
    echo "== $(date -u +%T) tests exit status $tests_rc"

    echo "== $(date -u +%T) benchmark"
    timeout "$BENCH_TIMEOUT" python3 benchmarks/bench_gpu.py --device cuda --out "$OUT/results_gpu.json"
    bench_rc=$?
    echo "== $(date -u +%T) benchmark exit status $bench_rc"
    [ "$tests_rc" -ne 0 ] && return "$tests_rc"
    return "$bench_rc"
}

check 2>&1 | tee "$OUT/log.txt"
exit "${PIPESTATUS[0]}"
