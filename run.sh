#!/usr/bin/env bash
# Kuzet's two commands (see README): `./run.sh demo` and `./run.sh test`.
# Needs only Python 3.11+; everything else is installed here, into .venv (and, for the browser
# and serial tests, Debian's chromium and socat through apt-get).
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${KUZET_VENV:-.venv}

need_python() {
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || {
    echo "Kuzet needs Python 3.11 or newer ($PY is $("$PY" --version 2>&1))." >&2; exit 1; }
}

install_python_deps() {
  need_python
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local stamp="$VENV/.kuzet-installed-$1" want
  # The hash of pyproject.toml says whether the installed dependencies are current (Python's hashlib:
  # no sha256sum needed).
  want=$("$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest()[:16])' pyproject.toml)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    if [ "$1" = test ]; then
      "$VENV/bin/python" -m pip install --quiet -e '.[test]'
    else
      "$VENV/bin/python" -m pip install --quiet -e .
    fi
    echo "$want" > "$stamp"
  fi
}

find_chromium() {
  command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || true
}

install_system_deps() {
  # Browser tests drive Debian's chromium with Playwright (never `playwright install`);
  # serial tests use socat for pseudo-terminal pairs. Whatever cannot be installed is said, and the
  # tests run anyway (those that need it fail and say what is missing).
  local missing=()
  [ -n "$(find_chromium)" ] || missing+=(chromium)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"  # never stop to ask for a password
    if command -v apt-get >/dev/null 2>&1 && { [ -z "$sudo" ] || command -v sudo >/dev/null 2>&1; }; then
      echo "Installing ${missing[*]} with apt-get ..."
      if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "Could not install ${missing[*]} (apt-get failed, or sudo needs a password): the tests that need them will fail and say so." >&2
      fi
    else
      echo "Cannot install ${missing[*]} (no apt-get, or not root and no sudo): the tests that need them will fail and say so." >&2
    fi
  fi
  # The browser tests use the Chromium found here (tests/util.py reads KUZET_CHROMIUM).
  if [ -z "${KUZET_CHROMIUM:-}" ]; then
    KUZET_CHROMIUM=$(find_chromium)
    export KUZET_CHROMIUM
  fi
}

case "${1:-}" in
  demo)
    shift
    install_python_deps run
    exec "$VENV/bin/kuzet" demo "$@"
    ;;
  test)
    shift
    install_python_deps test
    install_system_deps
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./run.sh demo [kuzet demo options] | ./run.sh test [pytest options]" >&2
    exit 2
    ;;
esac
