#!/usr/bin/env bash
# Builds the Debian package: the binary (release profile unless told otherwise), then the files
# cargo-deb takes from target/packaging/ ([package.metadata.deb] in Cargo.toml) — every man page
# (`taojie man --out`), the bash, zsh and fish completions (`taojie completions`) and
# /usr/share/doc/taojie/copyright with both license texts — then `cargo deb --no-build`.
#
#   packaging/build-deb.sh                  target/debian/taojie_VERSION-1_ARCH.deb
#   packaging/build-deb.sh --profile dist   another profile's binary (not dev, which cargo-deb is dropping)
#   CARGO_TARGET_DIR=T packaging/build-deb.sh --no-build --fast --strip -o DIR
#                                           what tests/packaging.rs runs: the binary already at
#                                           T/release/taojie, quick compression, into DIR
# Options other than --profile and --no-build go to cargo deb. Needs cargo-deb (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
deb_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs a name}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --no-build) build=0; shift ;;
    *) deb_args+=("$1"); shift ;;
  esac
done

cargo deb --version >/dev/null 2>&1 || {
  echo "build-deb.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
  exit 1
}

# Cargo puts the dev and test profiles in debug/, release and bench in release/.
case "$profile" in
  dev | test) profile_dir=debug ;;
  bench) profile_dir=release ;;
  *) profile_dir=$profile ;;
esac
bin="${CARGO_TARGET_DIR:-target}/$profile_dir/taojie"
if [ "$build" = 1 ]; then
  cargo build --locked --profile "$profile" --bin taojie
fi
[ -x "$bin" ] || { echo "build-deb.sh: no binary at $bin (build it, or drop --no-build)" >&2; exit 1; }

# The paths Cargo.toml's assets name: always target/packaging under the crate, whatever
# CARGO_TARGET_DIR says.
gen=target/packaging
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin" man --out "$gen/man" >/dev/null
"$bin" completions bash >"$gen/completions/taojie"
"$bin" completions zsh >"$gen/completions/_taojie"
"$bin" completions fish >"$gen/completions/taojie.fish"

# A machine-readable debian/copyright (DEP-5) with both license texts; a blank line inside a
# License paragraph is written " .".
indent() { sed -e 's/^[[:space:]]*$/./' -e 's/^/ /'; }
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: taojie"
  echo
  echo "Files: *"
  echo "Copyright: the taojie developers"
  echo "License: MIT or Apache-2.0"
  echo
  echo "License: MIT"
  indent <LICENSE-MIT
  echo
  echo "License: Apache-2.0"
  indent <LICENSE-APACHE
} >"$gen/copyright"

cargo deb --no-build --profile "$profile" "${deb_args[@]}"
