#!/usr/bin/env bash
# Regenerate constraints.txt, the lock of every dependency of `.[dev]` (all runtimes and the test tools),
# which scripts/setup.sh installs with `pip install -c constraints.txt -e ".[dev]"`.
#
#   scripts/lock.sh                            keep the pins there are; add or drop what pyproject.toml changed
#   scripts/lock.sh --upgrade                  re-resolve everything to the newest releases of today
#   scripts/lock.sh --upgrade-package nncf     move one package (and what it needs) only
#
# Then run scripts/test.sh on a fresh clone and commit constraints.txt with the change that needed it.
# It resolves with pip-tools' pip-compile in a throwaway venv (never .venv), for Python 3.11 (CI's python3),
# with torch held to the CPU wheel that pip finds on local disk: a bare torch pulls GBs of CUDA packages.
# inferlab itself is left out of the lock (it is installed editable), and so is nothing else: setuptools
# and pip are pinned as well (setup.sh upgrades pip to the pinned one).
#
#   scripts/lock.sh --check                    only check that .venv holds exactly the locked versions
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
  # Every installed distribution but inferlab must be pinned, at its pin (torch 2.13.0+cpu meets ==2.13.0):
  # a dependency added to pyproject.toml without `scripts/lock.sh` would otherwise install unpinned.
  .venv/bin/python - <<'PY'
import re
import sys
from importlib.metadata import distributions

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

with open("constraints.txt") as f:
    pins = {canonicalize_name(m[1]): m[2] for m in re.finditer(r"(?m)^([A-Za-z0-9._-]+)==(\S+)", f.read())}
bad = []
for dist in distributions():
    name = canonicalize_name(dist.metadata["Name"])
    if name == "inferlab":
        continue
    if name not in pins:
        bad.append(f"{name} {dist.version} is installed but not locked")
    elif dist.version not in SpecifierSet(f"=={pins[name]}"):
        bad.append(f"{name} {dist.version} is installed, the lock says {pins[name]}")
if bad:
    sys.exit("constraints.txt does not match .venv (scripts/lock.sh, then scripts/setup.sh):\n  " + "\n  ".join(bad))
print(f"lock: .venv holds the {len(pins)} locked versions")
PY
  .venv/bin/python -m pip check
  exit 0
fi
PYTHON=${PYTHON:-python3}
TORCH="torch==2.13.0"
PIP_TOOLS="pip-tools==7.6.2"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "lock.sh: $PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())');" \
       "the lock is for 3.11 (set PYTHON=python3.11)" >&2
  exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
# The pip that resolves is the pip the lock pins (setup.sh installs it): the locked one, unless upgrading all.
pip_req=$(grep -E '^pip==' constraints.txt 2>/dev/null || true)
case " $* " in *" --upgrade "* | *" -U "*) pip_req="" ;; esac
"$tmp/venv/bin/python" -m pip install -q --upgrade "${pip_req:-pip}"
"$tmp/venv/bin/python" -m pip install -q "$PIP_TOOLS"
echo "$TORCH" >"$tmp/torch.txt"
# --unsafe-package inferlab: `dev` names `inferlab[all]`, which would pin the project itself; naming it
# "unsafe" (without --allow-unsafe) leaves it out (its commented line is dropped below) and, as the option
# replaces pip-tools' default list, setuptools (which torch needs) is pinned like any other package.
# --strip-extras: pip refuses extras in a constraints file.
CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$tmp/venv/bin/pip-compile" -q --extra dev --strip-extras --unsafe-package inferlab --no-allow-unsafe \
  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
  -c "$tmp/torch.txt" -o constraints.txt "$@" pyproject.toml
pip_version=$("$tmp/venv/bin/python" -m pip --version | cut -d' ' -f2)
# The CPU wheel is torch 2.13.0+cpu; the lock says 2.13.0, which pip matches to that wheel where it lies
# (a local version outranks the bare one). The annotation names this script, not the temporary file.
sed -i -e "s/^torch==2.13.0+cpu$/$TORCH/" -e "s|-c $tmp/torch.txt|$TORCH (CPU wheel) from scripts/lock.sh|" \
  -e '/^pip==/,/^    # via/d' -e '/^# The following packages are considered to be unsafe/d' -e '/^# inferlab$/d' \
  constraints.txt
printf 'pip==%s\n    # via scripts/lock.sh (the pip that resolved this lock)\n' "$pip_version" >>constraints.txt
if grep -E -i '^(nvidia-(cu|nccl|nvjit|nvtx|cusparse|cufile|nvshmem)|cuda-|triton==|inferlab)' constraints.txt; then
  echo "lock.sh: the lock above names a CUDA package or inferlab itself; check the torch pin" >&2
  exit 1
fi
echo "wrote constraints.txt: $(grep -c '^[a-z0-9]' constraints.txt) pins"
