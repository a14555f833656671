# Shared by scripts/quickstart and scripts/test: a project virtualenv with scibind and its dev tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
# swagger2openapi (Swagger 2.0 -> OpenAPI 3) for the codegen step, pinned by codegen/package-lock.json
npm ci --prefix codegen --no-audit --no-fund --loglevel=error >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
