#!/usr/bin/env bash
# Build the one-folder app bundle dist/magi-studio/ (and dist/magi-studio-<version>-linux-<arch>.tar.gz)
# with PyInstaller from the repo's venv, using packaging/magi-studio.spec. Work files go to build/.
# Both folders are git-ignored: never commit them.
#
#   bash packaging/build_bundle.sh          (or: make bundle)
#
# Installs the pinned PyInstaller into the venv when it is missing or another version, creates the
# venv with `make setup` when there is none, prints the build time, the bundle's size and the gzipped
# tarball's size, and writes them to dist/magi-studio.build-info (shell variables; tests/packaging reads
# `started` to decide whether the bundle is older than the sources). TARBALL=0 skips the tarball.
# Exits non-zero when any step fails.
#
# One build at a time per checkout: a second build started meanwhile (another `make bundle`, a second
# test run) waits on the lock build/.bundle.lock, then builds from the sources as they are by then.
# BUNDLE_LOCK_HELD=1 says the caller holds that lock already (tests/packaging holds it while it builds
# and runs the bundle, so no build replaces the bundle under a running test).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYINSTALLER_VERSION=6.22.3
HOOKS_CONTRIB_VERSION=2026.9
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  make setup VENV="$VENV"
fi

mkdir -p build dist
if [ "${BUNDLE_LOCK_HELD:-0}" != 1 ]; then
  if command -v flock >/dev/null 2>&1; then
    exec 9>build/.bundle.lock
    if ! flock --nonblock 9; then
      echo "bundle: another build of this checkout is running; waiting for it to finish"
      flock 9
    fi
  else
    echo "bundle: no flock on this system: not guarding against a second build running at the same time"
  fi
fi

installed=$("$PY" -c "import importlib.metadata as m; print(m.version('pyinstaller'))" 2>/dev/null || true)
if [ "$installed" != "$PYINSTALLER_VERSION" ]; then
  echo "bundle: installing pyinstaller==$PYINSTALLER_VERSION into $VENV"
  "$PY" -m pip install --quiet "pyinstaller==$PYINSTALLER_VERSION" \
    "pyinstaller-hooks-contrib==$HOOKS_CONTRIB_VERSION"
fi

start=$(date +%s)
# No stale record or tarball beside a bundle that is being replaced.
rm -f dist/magi-studio.build-info dist/magi-studio-*-linux-*.tar.gz
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --workpath build --distpath dist packaging/magi-studio.spec
# Readable by every user, whatever modes the source files had (a bundle unpacked by root, run by anyone).
chmod -R a+rX dist/magi-studio
seconds=$(( $(date +%s) - start ))
bytes=$(du -sb dist/magi-studio | cut -f1)

echo "bundle: built dist/magi-studio in ${seconds} s"
echo "bundle: size $(du -sh dist/magi-studio | cut -f1) (du -sh dist/magi-studio)"
tarball="" tarball_bytes=0
if [ "${TARBALL:-1}" != 0 ]; then
  version=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
  tarball="dist/magi-studio-$version-linux-$(uname -m).tar.gz"
  tar -C dist -czf "$tarball" magi-studio
  tarball_bytes=$(stat -c %s "$tarball")
  echo "bundle: tarball $(du -h "$tarball" | cut -f1) ($tarball)"
fi
cat > dist/magi-studio.build-info <<INFO
started=$start
seconds=$seconds
bytes=$bytes
tarball=$tarball
tarball_bytes=$tarball_bytes
INFO
