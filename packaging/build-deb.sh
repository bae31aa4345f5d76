#!/usr/bin/env bash
# Builds the Debian package: the binary (release profile unless told otherwise), then the files
# cargo-deb takes from target/packaging/ ([package.metadata.deb] in Cargo.toml) — every man page
# (`taojie man --out`), the bash, zsh and fish completions (`taojie completions`) and
# /usr/share/doc/taojie/copyright with both license texts — then `cargo deb --no-build`.
#
#   packaging/build-deb.sh                  target/debian/taojie_VERSION-1_ARCH.deb
#   packaging/build-deb.sh --profile dist   another profile's binary (not dev, which cargo-deb is dropping)
#   CARGO_TARGET_DIR=T packaging/build-deb.sh --no-build --no-size-check --fast --strip -o DIR
#                                           what tests/packaging.rs runs: the binary already at
#                                           T/release/taojie (a debug one), quick compression, into DIR
# The binary must be at most 15 MB (15,000,000 bytes) and the package at most 6 MB, or the
# script fails saying which (--no-size-check: a debug or profiling binary, which keeps more).
# Options other than --profile, --no-build and --no-size-check go to cargo deb. Needs
# cargo-deb (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=1
size_check=1
max_binary=15000000
max_deb=6000000
deb_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=${2:?--profile needs a name}; shift 2 ;;
    --profile=*) profile=${1#--profile=}; shift ;;
    --no-build) build=0; shift ;;
    --no-size-check) size_check=0; shift ;;
    *) deb_args+=("$1"); shift ;;
  esac
done

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
# Sizes in bytes and in MB (10^6) for the messages.
mb() { awk -v n="$1" 'BEGIN { printf "%.1f MB", n / 1e6 }'; }
binary_size=$(stat -L -c %s "$bin")
if [ "$size_check" = 1 ] && [ "$binary_size" -gt "$max_binary" ]; then
  echo "build-deb.sh: $bin is $(mb "$binary_size"), over the $(mb "$max_binary") a release binary may be" \
    "(debug info left in? the release profile strips it; --no-size-check packs it anyway)" >&2
  exit 1
fi

cargo deb --version >/dev/null 2>&1 || {
  echo "build-deb.sh: cargo-deb is not installed (cargo install cargo-deb --locked)" >&2
  exit 1
}

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

# cargo deb prints the package's path as its last line.
deb=$(cargo deb --no-build --profile "$profile" "${deb_args[@]}" | tail -n 1)
echo "$deb"
deb_size=$(stat -c %s "$deb")
echo "build-deb.sh: binary $(mb "$binary_size"), package $(mb "$deb_size")" >&2
if [ "$size_check" = 1 ] && [ "$deb_size" -gt "$max_deb" ]; then
  echo "build-deb.sh: $deb is $(mb "$deb_size"), over the $(mb "$max_deb") a package may be" >&2
  exit 1
fi
