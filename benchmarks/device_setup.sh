# Sourced by the device_*.sh scripts on the GPU machine: install the carried wheels (.whl/) and inferlab
# into /tmp/site, and put them on the paths. Sets OUT (first argument, default /tmp/out).
OUT=${1:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . >/dev/null
export PATH=/tmp/site/bin:$PATH COLUMNS=200
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 examples/build_models.py >/dev/null
