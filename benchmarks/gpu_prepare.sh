#!/usr/bin/env bash
# Make the git-ignored files that benchmarks/gpu_session.sh needs on the GPU machine (docs/gpu.md), here, before any
# device time is spent: wheels for the machine's Python (its image lacks PyKEEN and a few of its dependencies) in
# .whl/, this package's own wheel beside them (for its entry points), and the FB15k-237 and WN9 data in
# .gpu/data.tar.gz. Then check that what travels fits the device tool's 64 MiB.
#
#     bash benchmarks/gpu_prepare.sh            # DATA=../shared/data PYTHON_VERSION=3.12 by default
#
# and then, with a lent GPU:
#     run(command="bash benchmarks/gpu_session.sh", carry=[".whl", ".gpu/data.tar.gz"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
# what the device image lacked on 2026-11-26 (docs/gpu.md); gpu_session.sh installs only the wheels it still lacks
PACKAGES=(
    pykeen==1.11.1 class-resolver==0.8.2 optuna==5.0.0 marshmallow==3.26.2
    alembic mako sqlalchemy greenlet colorlog click-default-group dataclasses-json docdata more-click more-itertools
    pystow torch-ppr torch-max-mem typing-inspect mypy-extensions
)
rm -rf .whl
mkdir -p .whl .gpu
python -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
    --platform manylinux2014_x86_64 --dest .whl "${PACKAGES[@]}"
python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir .whl .
tar czf .gpu/data.tar.gz.part -C "$DATA" \
    fb15k237/{train,valid,test}.txt fb15k237/entity2text.txt fb15k237/features.minilm.safetensors \
    wn9/{train,valid,test}.txt wn9/entity2text.txt wn9/features.minilm.safetensors
mv .gpu/data.tar.gz.part .gpu/data.tar.gz
total=$(du -cb .whl .gpu/data.tar.gz | tail -1 | cut -f1)
echo "$(ls .whl | wc -l) wheels in .whl/, .gpu/data.tar.gz: $((total / 1048576)) MiB to carry in all"
if [ "$total" -gt $((64 * 1048576)) ]; then
    echo "error: more than the 64 MiB that the device tool carries" >&2
    exit 1
fi
