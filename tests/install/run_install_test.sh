#!/usr/bin/env bash
# Install a Tessera build tree into a temporary prefix, then build and run an external
# consumer program against it twice: through find_package(Tessera) and through pkg-config.
# Also checks the installed layout: SONAME link, headers, no static library, only tsr_*
# symbols exported, and installed tools that find libtessera without LD_LIBRARY_PATH.
#
# Usage: run_install_test.sh --build-dir=DIR [--generator=G] [--cc=CC] [--config=CFG]
#                            [--version=X.Y.Z] [-- EXTRA_CFLAGS...]
# EXTRA_CFLAGS (sanitizer flags of the library build) go to both consumer builds.
set -euo pipefail

build_dir="" generator="Ninja" cc="${CC:-cc}" config="" version=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir=*) build_dir="${1#*=}" ;;
    --generator=*) generator="${1#*=}" ;;
    --cc=*) cc="${1#*=}" ;;
    --config=*) config="${1#*=}" ;;
    --version=*) version="${1#*=}" ;;
    --) shift; break ;;
    *) echo "run_install_test: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done
extra_flags=("$@")
[ -n "$build_dir" ] || { echo "run_install_test: --build-dir is required" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/tessera-install-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

fail() { echo "run_install_test: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cmake --install $build_dir --prefix $prefix"
install_args=(--install "$build_dir" --prefix "$prefix")
[ -z "$config" ] || install_args+=(--config "$config")
if ! cmake "${install_args[@]}" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "cmake --install failed"
fi

step "check the installed layout"
for f in include/tessera.h include/tessera/config.h include/tessera/runtime.h \
    include/tessera/task.h include/tessera/data.h include/tessera/status.h \
    include/tessera/array.h include/tessera/cuda.h; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
done
so="$(find "$prefix" -name libtessera.so -print -quit)"
[ -n "$so" ] || fail "libtessera.so not installed"
libdir="$(dirname "$so")"
soname="$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')"
[[ "$soname" == libtessera.so.[0-9]* ]] || fail "SONAME is '$soname', not libtessera.so.N"
[ -e "$libdir/$soname" ] || fail "$soname link not installed"
static_libs="$(find "$prefix" -name '*.a')"
[ -z "$static_libs" ] || fail "a static library was installed: $static_libs"
[ -f "$libdir/pkgconfig/tessera.pc" ] || fail "tessera.pc not in $libdir/pkgconfig"
cfg_dir="$(dirname "$(find "$prefix" -name TesseraConfig.cmake -print -quit)")"
[ -f "$cfg_dir/TesseraConfigVersion.cmake" ] || fail "TesseraConfigVersion.cmake not installed"
# Exported symbols: only the public tsr_ API (internal tsr__ and helpers stay hidden).
# Names starting with _ belong to the toolchain (_init, _fini, sanitizer hooks).
bad_syms="$(nm -D --defined-only "$so" | awk '{ print $NF }' | grep -v '^_' |
    grep -Ev '^tsr_[a-z0-9]' || true)"
[ -z "$bad_syms" ] ||
    fail "symbols exported outside the public API: $(tr '\n' ' ' <<<"$bad_syms")"
for exe in "$prefix"/bin/*; do
    if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then
        continue
    fi
    if env -u LD_LIBRARY_PATH ldd "$exe" | grep -q 'libtessera.*not found'; then
        fail "installed $(basename "$exe") does not find libtessera (RPATH)"
    fi
done
echo "lib: $so (SONAME $soname), package: $cfg_dir"

step "consumer through find_package(Tessera) (generator $generator)"
cmake -S "$here/consumer" -B "$tmp/cmake-consumer" -G "$generator" \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_C_FLAGS="${extra_flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${extra_flags[*]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    -DTSR_EXPECTED_VERSION="$version" -DTSR_EXPECTED_PREFIX="$prefix" \
    >"$tmp/consumer-configure.log" 2>&1 || { cat "$tmp/consumer-configure.log"; fail "configure"; }
grep 'Tessera .* from' "$tmp/consumer-configure.log" || true
cmake --build "$tmp/cmake-consumer" >"$tmp/consumer-build.log" 2>&1 ||
    { cat "$tmp/consumer-build.log"; fail "build with find_package"; }
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/cmake-consumer/consumer" ||
    fail "consumer built with find_package exited nonzero"

step "consumer through pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pc_version="$(pkg-config --modversion tessera)" || fail "pkg-config does not find tessera"
[ -z "$version" ] || [ "$pc_version" = "$version" ] ||
    fail "tessera.pc says version $pc_version, expected $version"
pc_flags="$(pkg-config --cflags --libs tessera)"
echo "pkg-config --cflags --libs tessera: $pc_flags"
[[ "$pc_flags" == *"-I$prefix/"* ]] || fail "Cflags do not point into $prefix"
# shellcheck disable=SC2086 # pc_flags is a list of flags
"$cc" -std=c11 -Wall -Wextra -Wundef -Wstrict-prototypes -Werror "${extra_flags[@]}" \
    -o "$tmp/pc-consumer" "$here/consumer/consumer.c" $pc_flags ||
    fail "build with pkg-config"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tmp/pc-consumer" ||
    fail "consumer built with pkg-config exited nonzero"

echo "run_install_test: ok"
