# Sourced by scripts/*: make .venv match the lock file, quietly, only when something changed.
ensure_venv() {
  local extra="${1:-}" python="${PYTHON:-python3}"
  local stamp=".venv/.installed-${extra:-run}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    touch "$stamp"
  fi
}
