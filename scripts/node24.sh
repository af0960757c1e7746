#!/usr/bin/env bash
# Node 24 (the current LTS) for running the tests and the benchmarks on it, from the npm registry only:
# the package node-<os>-<cpu>@<version> ships the `node` binary (no download from nodejs.org). Cached
# outside the clone, in ${XDG_CACHE_HOME:-$HOME/.cache}/nest-session-state/node-v<version>/, and reused when
# its bin/node prints the expected version.
#
#   scripts/node24.sh                 prints the bin directory that holds Node 24's `node`
#   scripts/node24.sh <command...>    runs the command with that directory first on PATH, so `node`,
#                                     npm (it starts with `#!/usr/bin/env node`), npx, Jest and every
#                                     child process the tests start run on Node 24:
#                                       scripts/node24.sh npm test      (= npm run test:node24)
#
# NODE24_VERSION overrides the version (default below).
set -euo pipefail

version="${NODE24_VERSION:-24.22.3}"

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *)
    echo "node24.sh: no registry package of Node for $(uname -s); install Node $version yourself and put it first on PATH" >&2
    exit 1
    ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) cpu=x64 ;;
  aarch64 | arm64) cpu=arm64 ;;
  *)
    echo "node24.sh: no registry package of Node for CPU $(uname -m); install Node $version yourself and put it first on PATH" >&2
    exit 1
    ;;
esac
package="node-$os-$cpu@$version"

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/nest-session-state"
dir="$cache_root/node-v$version"

verified() { [[ -x "$1/bin/node" && "$("$1/bin/node" -v 2>/dev/null)" == "v$version" ]]; }

if ! verified "$dir"; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "node24.sh: npm must be on PATH to fetch $package from the registry" >&2
    exit 1
  fi
  mkdir -p "$cache_root"
  work="$(mktemp -d "$cache_root/.fetch.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "node24.sh: fetching $package from the npm registry into $dir" >&2
  # From the scratch directory: npm pack with a spec downloads the registry tarball (through npm's cache).
  tarball="$(cd "$work" && npm pack "$package" --silent 2>/dev/null | tail -1)"
  if [[ -z "$tarball" || ! -f "$work/$tarball" ]]; then
    echo "node24.sh: npm pack $package failed (is the npm registry reachable?)" >&2
    exit 1
  fi
  tar xzf "$work/$tarball" -C "$work"
  if ! verified "$work/package"; then
    echo "node24.sh: $package did not give a bin/node that prints v$version" >&2
    exit 1
  fi
  # Into place with one rename, unless another run has put a verified copy there meanwhile.
  if ! verified "$dir"; then
    rm -rf "$dir"
    mv "$work/package" "$dir" 2>/dev/null || verified "$dir" || {
      echo "node24.sh: could not move Node $version into $dir" >&2
      exit 1
    }
  fi
  rm -rf "$work"
  trap - EXIT
fi

if [[ $# -eq 0 ]]; then
  echo "$dir/bin"
else
  export PATH="$dir/bin:$PATH"
  exec "$@"
fi
