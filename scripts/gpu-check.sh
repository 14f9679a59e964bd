#!/usr/bin/env bash
# One-command GPU verification: build with CUDA, run the CUDA tests and the GPU benchmarks,
# and print a summary table last (GPU, driver, CUDA, test counts, one row per benchmark).
#
#   scripts/gpu-check.sh prepare [DIR]   copy GoogleTest and nlohmann-json from this machine
#                                        into DIR (default .gpu-deps/, git-ignored, ~7 MB) so
#                                        that a machine without them can build the tests
#   scripts/gpu-check.sh [OPTIONS]       configure + build build-gpu/ (Release, CUDA=ON, sm_90,
#                                        -j$(nproc)), ctest -L cuda (with the NumPy oracles on the
#                                        GPU, array.numpy_oracle.cuda and .cuda_only, when configure
#                                        found numpy),
#                                        the array kernels' bandwidth, the GPU benchmarks (transfer,
#                                        overhead, gemm, the array cases one by one, spill, and
#                                        array's sum_spill_gpu last; skipped if out of time)
#   scripts/gpu-check.sh summary FILE    print the benchmark table of a JSON-lines file
#
# Options:
#   --quick          benchmarks with --quick --runs 1 (default: --runs 5)
#   --runs N         benchmark runs (default 5; 1 with --quick)
#   --all            run the whole test suite, not only the tests labelled cuda
#   --prebuilt DIR   use an existing build in DIR instead of building. If DIR was built at
#                    another absolute path, its CTest files are rewritten in place to this
#                    path (so carry a copy), and LD_LIBRARY_PATH gets DIR's shared libraries
#                    and the machine's CUDA libraries.
#   --out DIR        where logs go (default: $OUT when set, else the build folder)
#   --budget SECS    finish within SECS (default 540): later steps are cut short, the
#                    summary still prints
#   --deps MODE      auto (default): carried .gpu-deps/ only for what the system lacks;
#                    carried: always use .gpu-deps/; system: never
#   --gtest-source   build GoogleTest from the source in .gpu-deps/ rather than using its
#                    prebuilt static libraries (done anyway when this machine's compiler is
#                    not GCC at least as new as the one that built them)
#
# Files written to the output folder: gpu-check.log (everything), gpu-bench.jsonl (benchmark
# records, shared/BENCH.md format), gpu-summary.txt (the final table).
# Exit status: 0 when the build, every test and every benchmark succeeded; 1 otherwise;
# 2 on a usage error.
#
# On the lent GPU machine (device tool; it has cmake, ninja and nvcc but no GoogleTest or
# nlohmann-json and no network), once here:
#   scripts/gpu-check.sh prepare
# then the device `run` call:
#   command:   bash scripts/gpu-check.sh
#   carry:     [".gpu-deps"]
#   timeout_s: 600
# (add --quick for a smoke run). What comes back under $OUT: the three files above.
# A build made here instead (build-gpu/ is ~40 MB; the carried total must stay < 64 MiB):
#   command: bash scripts/gpu-check.sh --prebuilt build-gpu     carry: ["build-gpu"]
# Its binaries must run there (built here on Debian 12; expected to, not yet seen).
#
# Environment: TESSERA_CMAKE_ARGS (extra configure arguments, word-split), TESSERA_JOBS
# (build/test parallelism, default nproc), TESSERA_BENCH_TIMEOUT (seconds per benchmark,
# default 150), CXX (the C++ compiler, default c++).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${TESSERA_JOBS:-$(nproc 2>/dev/null || echo 4)}"
BENCH_TIMEOUT="${TESSERA_BENCH_TIMEOUT:-150}"
# A benchmark, or benchmark:case for one case alone (its own process, time limit and row):
# the array GPU cases each run on their own so that one that fails or hangs costs only itself.
BENCHES=(transfer overhead gemm array:mean_x_plus_xt_gpu array:sum_f32_gpu array:matmul_f64_gpu
    array:elementwise_chain_gpu array:math_chain_gpu spill array:sum_spill_gpu)
CMAKE_CONFIG_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DTESSERA_WITH_CUDA=ON
    -DCMAKE_CUDA_ARCHITECTURES=90)

# Options and state (set by parse_args and the steps; read by print_summary).
OPT_QUICK=0 OPT_ALL=0 OPT_RUNS="" OPT_PREBUILT="" OPT_OUT="" OPT_BUDGET=540
OPT_DEPS=auto OPT_GTEST_SOURCE=0
BUILD="" LOG="" JSONL="" SUMMARY="" WORK="" START=$SECONDS
GPU_NAME="" GPU_DRIVER="" CUDA_TOOLKIT="" CUDA_DRIVER=""
BUILD_STATE="not run" TEST_STATE="not run" TEST_FAILED=1
ORACLE_STATE="not run" KERNEL_BW="not run"
N_PASSED=0 N_FAILED=0 N_SKIPPED=0
FAILURES=()

die() {
    printf 'gpu-check: error: %s\n' "$*" >&2
    exit 2
}

say() { # one progress line, to the terminal and the log
    if [ -n "$LOG" ]; then
        printf '== gpu-check [%3ds]: %s\n' "$((SECONDS - START))" "$*" | tee -a "$LOG"
    else
        printf '== gpu-check: %s\n' "$*"
    fi
}

logged() { # logged CMD...: run CMD with its output shown and appended to the log
    local st
    set +e
    "$@" 2>&1 | tee -a "$LOG"
    st=${PIPESTATUS[0]}
    set -e
    return "$st"
}

remaining() { echo $((OPT_BUDGET - (SECONDS - START))); }

with_timeout() { # with_timeout SECS CMD...: exit status 124 when SECS ran out
    local secs="$1"
    shift
    if command -v timeout >/dev/null; then
        timeout -k 10 "$secs" "$@"
    else
        "$@"
    fi
}

find_exe() { # find_exe NAME [DIRS...]: first of PATH, then DIRS/NAME
    local name="$1" d
    shift
    if command -v "$name" >/dev/null; then
        command -v "$name"
        return 0
    fi
    for d in "$@"; do
        if [ -x "$d/$name" ]; then
            echo "$d/$name"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# prepare: copy GoogleTest (headers, static libraries, CMake config, source) and
# nlohmann-json (headers, CMake config) into a relocatable prefix.

config_dir_of() { # config_dir_of FILE: first existing folder holding FILE under /usr{,/local}
    local p d
    for p in /usr /usr/local; do
        for d in "$p"/lib/*/cmake/* "$p"/lib/cmake/* "$p"/lib64/cmake/* "$p"/share/cmake/*; do
            if [ -f "$d/$1" ]; then
                echo "$d"
                return 0
            fi
        done
    done
    return 1
}

copy_package() { # copy_package DEST CONFIG_DIR INCLUDE_SUBDIR...: config dir + headers
    local dest="$1" cfg="$2" prefix rel inc
    shift 2
    case "$cfg" in
    /usr/local/*) prefix=/usr/local ;;
    *) prefix=/usr ;;
    esac
    rel="${cfg#"$prefix"/}"
    mkdir -p "$dest/$rel" "$dest/include"
    cp -a "$cfg/." "$dest/$rel/"
    for inc in "$@"; do
        [ -d "$prefix/include/$inc" ] || continue
        cp -a "$prefix/include/$inc" "$dest/include/"
    done
    echo "$prefix/${rel%/cmake/*}"
}

cmd_prepare() {
    local dest="${1:-$ROOT/.gpu-deps}" gcfg ncfg libdir src cxx="${CXX:-c++}"
    gcfg="$(config_dir_of GTestConfig.cmake)" ||
        die "GoogleTest's CMake config not found; install libgtest-dev here first"
    ncfg="$(config_dir_of nlohmann_jsonConfig.cmake)" ||
        die "nlohmann_json's CMake config not found; install nlohmann-json3-dev here first"
    rm -rf "$dest"
    mkdir -p "$dest"
    libdir="$(copy_package "$dest" "$gcfg" gtest gmock)"
    copy_libs "$dest" "$gcfg" "$libdir"
    copy_package "$dest" "$ncfg" nlohmann >/dev/null
    if [ ! -f "$dest/include/gtest/gtest.h" ] || [ ! -f "$dest/include/nlohmann/json.hpp" ]; then
        die "gtest/gtest.h or nlohmann/json.hpp not found beside their CMake configs"
    fi
    for src in /usr/src/googletest /usr/src/gtest; do
        if [ -f "$src/CMakeLists.txt" ]; then
            mkdir -p "$dest/src"
            cp -a "$src" "$dest/src/googletest"
            break
        fi
    done
    {
        echo "arch=$(uname -m)"
        echo "cxx_major=$("$cxx" -dumpversion 2>/dev/null | cut -d. -f1)"
        echo "made_on=$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
    } >"$dest/ORIGIN"
    echo "gpu-check: prepared $dest ($(du -sh "$dest" | cut -f1)); carry [\"${dest#"$ROOT"/}\"]"
    [ -d "$dest/src/googletest" ] || echo "gpu-check: note: no GoogleTest source in" \
        "/usr/src/googletest; only the prebuilt libraries travel"
}

copy_libs() { # copy_libs DEST CONFIG_DIR LIBDIR: the gtest/gmock libraries beside the config
    local dest="$1" cfg="$2" libdir="$3" prefix rel
    case "$cfg" in
    /usr/local/*) prefix=/usr/local ;;
    *) prefix=/usr ;;
    esac
    rel="${libdir#"$prefix"/}"
    mkdir -p "$dest/$rel"
    cp -a "$libdir"/libgtest* "$libdir"/libgmock* "$dest/$rel/" 2>/dev/null || true
    ls "$dest/$rel"/libgtest* >/dev/null 2>&1 || die "no libgtest in $libdir"
}

# ---------------------------------------------------------------------------------------
# Dependencies for the check: where GoogleTest and nlohmann-json come from.

system_has() { # system_has FILE: a CMake config FILE in the system prefixes
    config_dir_of "$1" >/dev/null
}

carried_gtest_usable() { # the carried static libraries suit this machine's C++ compiler
    local deps="$1" cxx="${CXX:-c++}" want_major here_major
    [ "$(sed -n 's/^arch=//p' "$deps/ORIGIN" 2>/dev/null)" = "$(uname -m)" ] || return 1
    "$cxx" --version 2>/dev/null | grep -q 'Free Software Foundation' || return 1
    want_major="$(sed -n 's/^cxx_major=//p' "$deps/ORIGIN")"
    here_major="$("$cxx" -dumpversion 2>/dev/null | cut -d. -f1)"
    [ -n "$want_major" ] && [ -n "$here_major" ] && [ "$here_major" -ge "$want_major" ]
}

build_gtest_from_source() { # prints the GTest_DIR of a fresh install in the build folder
    local src="$1" bdir="$BUILD/gpu-check-deps/gtest-build" pfx="$BUILD/gpu-check-deps/gtest"
    say "building GoogleTest from $src" >&2
    cmake -S "$src" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_GMOCK=OFF \
        -DINSTALL_GTEST=ON -DCMAKE_INSTALL_PREFIX="$pfx" -DCMAKE_INSTALL_LIBDIR=lib \
        -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >>"$LOG" 2>&1 &&
        cmake --build "$bdir" -j "$JOBS" >>"$LOG" 2>&1 &&
        cmake --install "$bdir" >>"$LOG" 2>&1 || return 1
    dirname "$(find "$pfx" -name GTestConfig.cmake | head -n 1)"
}

dep_args() { # prints one CMake argument per line for the carried dependencies
    local deps="$ROOT/.gpu-deps" gdir ndir
    [ "$OPT_DEPS" != system ] || return 0
    if [ "$OPT_DEPS" = carried ] || ! system_has GTestConfig.cmake; then
        [ -f "$deps/ORIGIN" ] || return 0
        gdir="$(dirname "$(find "$deps" -path '*/cmake/GTest/GTestConfig.cmake' | head -n 1)")"
        if [ "$OPT_GTEST_SOURCE" = 1 ] || ! carried_gtest_usable "$deps"; then
            if [ -f "$deps/src/googletest/CMakeLists.txt" ]; then
                gdir="$(build_gtest_from_source "$deps/src/googletest")" ||
                    say "GoogleTest source build failed (see log); trying the prebuilt one" >&2
            fi
        fi
        say "GoogleTest from $gdir" >&2
        echo "-DGTest_DIR=$gdir"
    fi
    if [ "$OPT_DEPS" = carried ] || ! system_has nlohmann_jsonConfig.cmake; then
        ndir="$(find "$deps" -name nlohmann_jsonConfig.cmake 2>/dev/null | head -n 1)"
        if [ -n "$ndir" ]; then
            say "nlohmann-json from $(dirname "$ndir")" >&2
            echo "-Dnlohmann_json_DIR=$(dirname "$ndir")"
        fi
    fi
}

have_gtest() { # after dep_args: can the tests be configured at all
    [ "$OPT_DEPS" != system ] && [ -f "$ROOT/.gpu-deps/ORIGIN" ] && return 0
    [ "$OPT_DEPS" != carried ] && system_has GTestConfig.cmake &&
        system_has nlohmann_jsonConfig.cmake
}

# ---------------------------------------------------------------------------------------
# Steps. Each records its outcome in the globals and returns 0, so one failure never stops
# the next step or the summary.

step_gpu_info() {
    local smi nvcc
    if smi="$(find_exe nvidia-smi /usr/local/nvidia/bin /usr/bin)"; then
        GPU_NAME="$("$smi" --query-gpu=name --format=csv,noheader 2>/dev/null |
            paste -sd';' - || true)"
        GPU_DRIVER="$("$smi" --query-gpu=driver_version --format=csv,noheader 2>/dev/null |
            head -n 1 || true)"
        CUDA_DRIVER="$("$smi" 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' |
            head -n 1 || true)"
        logged "$smi" || true
    fi
    GPU_NAME="${GPU_NAME:-none found (nvidia-smi missing or failing)}"
    if nvcc="$(find_exe nvcc /usr/local/cuda/bin)"; then
        CUDA_TOOLKIT="$("$nvcc" --version 2>/dev/null |
            sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n 1 || true)"
        "$nvcc" --version >>"$LOG" 2>&1 || true
    fi
    say "GPU: $GPU_NAME; driver ${GPU_DRIVER:-?}; CUDA toolkit ${CUDA_TOOLKIT:-?}," \
        "driver's CUDA ${CUDA_DRIVER:-?}"
    if [ -n "$CUDA_DRIVER" ] && [ -n "$CUDA_TOOLKIT" ] &&
        [ "$(printf '%s\n%s\n' "$CUDA_DRIVER" "$CUDA_TOOLKIT" | sort -V | head -n 1)" != \
            "$CUDA_TOOLKIT" ]; then
        say "WARNING: the driver supports CUDA $CUDA_DRIVER, older than the toolkit's" \
            "$CUDA_TOOLKIT: programs built here will find no CUDA device"
    fi
}

step_build() {
    local args=() line t0=$SECONDS left
    if [ -f "$BUILD/CMakeCache.txt" ] &&
        ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$BUILD/CMakeCache.txt"; then
        BUILD_STATE="FAILED ($BUILD was configured with another generator; remove it)"
        return 0
    fi
    mkdir -p "$BUILD"
    while IFS= read -r line; do
        args+=("$line")
    done < <(dep_args)
    if have_gtest; then
        args+=(-DTESSERA_BUILD_TESTS=ON)
    else
        say "no GoogleTest here and no .gpu-deps/ (run 'scripts/gpu-check.sh prepare'" \
            "elsewhere and carry it): building without tests"
        args+=(-DTESSERA_BUILD_TESTS=OFF)
    fi
    say "configure $BUILD"
    # shellcheck disable=SC2086 # TESSERA_CMAKE_ARGS is a list of words
    if ! logged cmake -S "$ROOT" -B "$BUILD" "${CMAKE_CONFIG_ARGS[@]}" "${args[@]}" \
        ${TESSERA_CMAKE_ARGS:-}; then
        BUILD_STATE="FAILED (configure)"
        return 0
    fi
    left="$(remaining)"
    if [ "$left" -lt 10 ]; then # timeout 0 would mean no limit at all
        BUILD_STATE="FAILED (time budget spent before the build)"
        return 0
    fi
    say "build -j$JOBS (at most ${left}s)"
    if ! logged with_timeout "$left" cmake --build "$BUILD" -j "$JOBS"; then
        BUILD_STATE="FAILED (build; see log)"
        return 0
    fi
    BUILD_STATE="ok ($((SECONDS - t0))s)"
}

relocate_prebuilt() { # make a build made at another path usable here
    local old_b old_s new_b="$BUILD" new_s="$ROOT" f libdirs
    old_b="$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$BUILD/CMakeCache.txt")"
    old_s="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt")"
    if [ -n "$old_b" ] && [ "$old_b" != "$new_b" ]; then
        say "prebuilt build made at $old_b (source $old_s): rewriting its CTest/install files"
        find "$BUILD" \( -name CTestTestfile.cmake -o -name cmake_install.cmake \
            -o -name '*_include.cmake' -o -name '*_tests.cmake' \) -print0 |
            while IFS= read -r -d '' f; do
                rewrite_paths "$f" "$old_b" "$new_b" "$old_s" "$new_s"
            done
    fi
    # Build-tree RPATHs name the old path; the CUDA libraries may live elsewhere here.
    libdirs="$(find "$BUILD" -name 'libtessera*.so*' -printf '%h\n' 2>/dev/null | sort -u |
        paste -sd: -)"
    for f in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$f" ] && libdirs="$libdirs:$f"
    done
    for f in $(python3 -c 'import site, glob
dirs = {p for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/*/lib")}
print(" ".join(sorted(dirs)))' 2>/dev/null); do
        libdirs="$libdirs:$f"
    done
    export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

rewrite_paths() { # rewrite_paths FILE OLD_BUILD NEW_BUILD OLD_SRC NEW_SRC
    local f="$1"
    # Through placeholders, so that a new path containing an old one is not rewritten twice.
    sed -i -e "s|$(re_escape "$2")|@GPUCHECK_B@|g" -e "s|$(re_escape "$4")|@GPUCHECK_S@|g" \
        -e "s|@GPUCHECK_B@|$(repl_escape "$3")|g" -e "s|@GPUCHECK_S@|$(repl_escape "$5")|g" "$f"
}

re_escape() { printf '%s' "$1" | sed 's/[][\.*^$|/]/\\&/g'; }
repl_escape() { printf '%s' "$1" | sed 's/[\&|]/\\&/g'; }

step_tests() {
    local out="$WORK/ctest.out" left label=(-L cuda) what="cuda label" st=0 jobs
    # GPU tests share one GPU, each runtime assuming most of its memory is its own:
    # a few at a time (every test, CPU ones included, with --all).
    jobs=$((JOBS < 4 ? JOBS : 4))
    if [ "$OPT_ALL" = 1 ]; then
        label=()
        what="all"
        jobs="$JOBS"
    fi
    left="$(remaining)"
    if [ "$left" -lt 30 ]; then
        TEST_STATE="NOT RUN (time budget spent)"
        return 0
    fi
    say "ctest ($what, -j$jobs, at most ${left}s)"
    set +e
    with_timeout "$left" ctest --test-dir "$BUILD" ${label[@]+"${label[@]}"} --output-on-failure \
        --no-tests=error -j "$jobs" --timeout 300 2>&1 | tee -a "$LOG" | tee "$out"
    st=${PIPESTATUS[0]}
    set -e
    count_tests "$out"
    oracle_state "$out"
    TEST_FAILED=$((st != 0 || N_FAILED > 0))
    TEST_STATE="$what: $N_PASSED passed, $N_FAILED failed, $N_SKIPPED skipped (ctest exit $st)"
    if [ "$st" -ne 0 ] && [ $((N_PASSED + N_FAILED + N_SKIPPED)) -eq 0 ]; then
        TEST_STATE="$what: FAILED, no test ran (ctest exit $st; none labelled cuda?)"
    elif [ "$N_SKIPPED" -gt 0 ] && [ -n "$GPU_DRIVER" ] && [ "$OPT_ALL" != 1 ]; then
        # A cuda-labelled test skips only when the runtime finds no CUDA device:
        # with a GPU there, that is a failure (a driver too old for this CUDA, say;
        # see 'tessera info' in the log), not a pass. (With --all, the CPU-labelled
        # cuda_absent_test skips by design when it sees a GPU.)
        TEST_FAILED=1
        TEST_STATE="$TEST_STATE; FAILED: skips although nvidia-smi sees a GPU"
    fi
}

oracle_state() { # oracle_state CTEST_OUTPUT: how the NumPy oracles on the GPU went
    ORACLE_STATE="$(one_oracle_state "$1" cuda); cuda_only $(one_oracle_state "$1" cuda_only)"
}

one_oracle_state() { # one_oracle_state CTEST_OUTPUT SUFFIX: array.numpy_oracle.SUFFIX
    local line name="array\\.numpy_oracle\\.$2"
    line="$(grep -E "^ *[0-9]+/[0-9]+ +Test +#[0-9]+: $name " "$1" || true)"
    case "$line" in
    "") if ctest --test-dir "$BUILD" -N -R "^$name\$" 2>/dev/null | grep -q "numpy_oracle\.$2\$"; then
        echo "not run"
    else
        echo "not registered (configure found no python3 with numpy)"
    fi ;;
    *"***Skipped"* | *" Skipped "*) echo "skipped (no CUDA device seen)" ;;
    *" Passed "*) echo "passed" ;;
    *) echo "FAILED (see log)" ;;
    esac
}

# The array kernels' bandwidth on this GPU (cuda_kernels_test's ReportsBandwidth: a float32
# chain and sum over 2e8 elements beside a device-to-device copy); figures only, no verdict.
step_kernel_bandwidth() {
    local exe="$BUILD/tests/cuda_kernels_test" left
    if [ ! -x "$exe" ]; then
        KERNEL_BW="not run (tests/cuda_kernels_test not built)"
        return 0
    fi
    left=$(($(remaining) - 30))
    if [ "$left" -lt 30 ]; then
        KERNEL_BW="not run (time budget spent)"
        return 0
    fi
    say "array kernel bandwidth (cuda_kernels_test --gtest_filter=CudaKernels.ReportsBandwidth)"
    with_timeout "$((left < 120 ? left : 120))" "$exe" \
        --gtest_filter=CudaKernels.ReportsBandwidth >"$WORK/bw.out" 2>&1 || true
    cat "$WORK/bw.out" >>"$LOG"
    KERNEL_BW="$(grep 'GB/s' "$WORK/bw.out" | sed 's/^ *//' | paste -sd';' - || true)"
    KERNEL_BW="${KERNEL_BW:-no figures (skipped or failed; see log)}"
}

count_tests() { # count_tests CTEST_OUTPUT: one result line per test ("1/9 Test #3: ...")
    local line
    N_PASSED=0 N_FAILED=0 N_SKIPPED=0
    while IFS= read -r line; do
        case "$line" in
        *"***Skipped"* | *" Skipped "*) N_SKIPPED=$((N_SKIPPED + 1)) ;;
        *" Passed "*) N_PASSED=$((N_PASSED + 1)) ;;
        *) N_FAILED=$((N_FAILED + 1)) ;;
        esac
    done < <(grep -E '^ *[0-9]+/[0-9]+ +Test +#[0-9]+: ' "$1" || true)
}

bench_args_words() { # the options every benchmark gets
    if [ "$OPT_QUICK" = 1 ]; then
        echo "--quick --runs ${OPT_RUNS:-1}"
    else
        echo "--runs ${OPT_RUNS:-5}"
    fi
}

step_benches() { # writes $WORK/bench.status: name<TAB>state<TAB>note or -<TAB>records file
    local exe="$BUILD/bin/tessera-bench" name args=() left secs st rec bench case_args
    local status="$WORK/bench.status"
    : >"$status"
    : >"$JSONL"
    read -r -a args <<<"$(bench_args_words)"
    for name in "${BENCHES[@]}"; do
        bench="${name%%:*}"
        case_args=()
        if [ "$bench" != "$name" ]; then
            case_args=(--case "${name#*:}")
        fi
        rec="$WORK/bench-${name//:/-}.jsonl"
        : >"$rec"
        left=$(($(remaining) - 20))
        secs=$((left < BENCH_TIMEOUT ? left : BENCH_TIMEOUT))
        if [ ! -x "$exe" ]; then
            printf '%s\tfailed\t%s\t%s\n' "$name" "tessera-bench not built" "$rec" >>"$status"
            continue
        elif [ "$secs" -lt 10 ]; then
            printf '%s\tfailed\t%s\t%s\n' "$name" "not run: time budget spent" "$rec" >>"$status"
            continue
        fi
        say "tessera-bench $bench --device cuda --json ${args[*]} ${case_args[*]}" \
            "(at most ${secs}s)"
        st=0
        with_timeout "$secs" "$exe" "$bench" --device cuda --json ${args[@]+"${args[@]}"} \
            ${case_args[@]+"${case_args[@]}"} \
            >"$WORK/bench.out" 2>"$WORK/bench.err" || st=$?
        cat "$WORK/bench.err" "$WORK/bench.out" | tee -a "$LOG"
        grep '^{' "$WORK/bench.out" >"$rec" || true
        cat "$rec" >>"$JSONL"
        if [ "$st" -eq 124 ]; then
            printf '%s\tfailed\t%s\t%s\n' "$name" "timed out after ${secs}s" "$rec" >>"$status"
        elif [ "$st" -ne 0 ]; then
            printf '%s\tfailed\t%s\t%s\n' "$name" "exit $st: $(tail -n 1 "$WORK/bench.err" |
                cut -c1-100 | tr '\t' ' ')" "$rec" >>"$status"
        elif [ ! -s "$rec" ]; then
            printf '%s\tfailed\t%s\t%s\n' "$name" "no JSON records: $(tail -n 1 "$WORK/bench.err" |
                cut -c1-100 | tr '\t' ' ')" "$rec" >>"$status"
        else
            printf '%s\tok\t-\t%s\n' "$name" "$rec" >>"$status"
        fi
    done
}

# ---------------------------------------------------------------------------------------
# Summary table: one row per benchmark record, a FAILED row per failed benchmark. Exits 1
# when any row failed (including records that are not valid JSON).

bench_table() { # bench_table STATUS_FILE
    if command -v python3 >/dev/null; then
        python3 - "$1" <<'PY'
import json, sys

def num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)

def fmt(x):
    if not num(x):
        return "-"
    return "%.0f" % x if abs(x) >= 1000 else "%.4g" % x

rows, bad = [], 0
for status_line in open(sys.argv[1]):
    name, state, note, path = (status_line.rstrip("\n").split("\t") + [""] * 4)[:4]
    try:
        lines = [l for l in open(path) if l.strip()] if path else []
    except OSError:
        lines = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            rows.append((name + "/?", "BAD JSON: " + line.strip()[:50], "", "", "", ""))
            bad += 1
            continue
        v, pv, unit = r.get("value"), r.get("peer_value"), r.get("unit") or ""
        ratio = "%.3f" % (v / pv) if num(v) and num(pv) and pv != 0 else "-"
        rows.append(("%s/%s" % (r.get("bench", name), r.get("case", "?")),
                     (fmt(v) + " " + unit).strip(), str(r.get("peer") or "-"),
                     fmt(pv), ratio, str(r.get("better") or "")))
    if state != "ok":
        rows.append((name, "FAILED: " + note, "", "", "", ""))
        bad += 1

head = ("bench/case", "value", "peer", "peer_value", "ratio", "better")
table = [head] + [r for r in rows if r[2] or r[3] or r[4]]
w = [max(len(r[i]) for r in table) for i in range(6)]
w[0] = max(len(r[0]) for r in rows + [head])
for r in [head] + rows:
    if r[1].startswith(("FAILED", "BAD JSON")):
        print("  %-*s  %s" % (w[0], r[0], r[1]))
    else:
        print("  " + "  ".join("%-*s" % (w[i], r[i]) for i in range(6)).rstrip())
if not rows:
    print("  (no benchmark records)")
sys.exit(1 if bad or not rows else 0)
PY
    else
        bench_table_awk "$1"
    fi
}

bench_table_awk() { # the same table with awk alone (no python3)
    local name state note path bad=0 line
    printf '  %-28s %-16s %-18s %-12s %-8s %s\n' bench/case value peer peer_value ratio better
    while IFS=$'\t' read -r name state note path; do
        if [ -n "$path" ] && [ -s "$path" ]; then
            awk -v name="$name" '
            function str(k,   m) {
                if (match($0, "\"" k "\"[ ]*:[ ]*\"[^\"]*\"")) {
                    m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*"[ ]*:[ ]*"/, "", m)
                    sub(/"$/, "", m); return m
                }
                return "-"
            }
            function val(k,   m) {
                if (match($0, "\"" k "\"[ ]*:[ ]*[-+0-9.eE]+")) {
                    m = substr($0, RSTART, RLENGTH); sub(/^"[^"]*"[ ]*:[ ]*/, "", m); return m
                }
                return ""
            }
            NF {
                if ($0 !~ /^[ ]*\{.*\}[ ]*$/) {
                    printf "  %-28s BAD JSON\n", name "/?"; bad = 1; next
                }
                v = val("value"); pv = val("peer_value")
                r = (v != "" && pv != "" && pv + 0 != 0) ? sprintf("%.3f", v / pv) : "-"
                printf "  %-28s %-16s %-18s %-12s %-8s %s\n", str("bench") "/" str("case"),
                    (v == "" ? "-" : sprintf("%.4g", v)) " " str("unit"), str("peer"),
                    (pv == "" ? "-" : sprintf("%.4g", pv)), r, str("better")
            }
            END { exit bad }' "$path" || bad=1
        fi
        if [ "$state" != ok ]; then
            printf '  %-28s FAILED: %s\n' "$name" "$note"
            bad=1
        fi
    done <"$1"
    [ "$bad" -eq 0 ]
}

print_summary() {
    local bench_ok=0 result
    {
        echo
        echo "==================== gpu-check summary ===================="
        printf '%-9s %s\n' "GPU:" "$GPU_NAME"
        printf '%-9s %s\n' "driver:" "${GPU_DRIVER:-unknown}"
        printf '%-9s toolkit (nvcc) %s, driver supports %s\n' "CUDA:" \
            "${CUDA_TOOLKIT:-unknown}" "${CUDA_DRIVER:-unknown}"
        printf '%-9s %s\n' "build:" "$BUILD_STATE ($BUILD)"
        printf '%-9s %s\n' "tests:" "$TEST_STATE"
        printf '%-9s %s\n' "oracle:" "NumPy oracle on the GPU (array.numpy_oracle.*): cuda $ORACLE_STATE"
        printf '%-9s %s\n' "kernels:" "$KERNEL_BW"
        printf '%-9s %s\n' "bench:" "$(bench_args_words); records in $JSONL"
    } | tee "$SUMMARY"
    bench_table "$WORK/bench.status" | tee -a "$SUMMARY" && bench_ok=1
    [[ $BUILD_STATE == ok* ]] || FAILURES+=(build)
    [ "$TEST_FAILED" = 0 ] || FAILURES+=(tests)
    [ "$bench_ok" = 1 ] || FAILURES+=(benchmarks)
    if [ ${#FAILURES[@]} -eq 0 ]; then
        result="PASS"
    else
        result="FAIL (${FAILURES[*]})"
    fi
    printf '%-9s %s in %ds; log %s\n' "result:" "$result" "$((SECONDS - START))" "$LOG" |
        tee -a "$SUMMARY"
    [ ${#FAILURES[@]} -eq 0 ]
}

# ---------------------------------------------------------------------------------------

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
        --quick) OPT_QUICK=1 ;;
        --all) OPT_ALL=1 ;;
        --gtest-source) OPT_GTEST_SOURCE=1 ;;
        --runs | --prebuilt | --out | --budget | --deps)
            [ $# -ge 2 ] || die "$1 needs a value"
            case "$1" in
            --runs) OPT_RUNS="$2" ;;
            --prebuilt) OPT_PREBUILT="$2" ;;
            --out) OPT_OUT="$2" ;;
            --budget) OPT_BUDGET="$2" ;;
            --deps) OPT_DEPS="$2" ;;
            esac
            shift
            ;;
        *) die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    [[ $OPT_DEPS =~ ^(auto|carried|system)$ ]] || die "--deps takes auto, carried or system"
    [[ $OPT_BUDGET =~ ^[0-9]+$ ]] || die "--budget takes seconds"
    [[ -z $OPT_RUNS || $OPT_RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive count"
}

cmd_check() {
    local name
    parse_args "$@"
    if [ -n "$OPT_PREBUILT" ]; then
        [ -f "$OPT_PREBUILT/CMakeCache.txt" ] || die "$OPT_PREBUILT is not a CMake build folder"
        BUILD="$(cd "$OPT_PREBUILT" && pwd)"
    else
        BUILD="$ROOT/build-gpu"
    fi
    local out="${OPT_OUT:-${OUT:-$BUILD}}"
    mkdir -p "$out" "$BUILD"
    out="$(cd "$out" && pwd)"
    LOG="$out/gpu-check.log" JSONL="$out/gpu-bench.jsonl" SUMMARY="$out/gpu-summary.txt"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    : >"$LOG"
    : >"$WORK/bench.status"
    say "repo $ROOT; build $BUILD; output $out; budget ${OPT_BUDGET}s; $JOBS jobs"
    step_gpu_info
    if [ -n "$OPT_PREBUILT" ]; then
        relocate_prebuilt
        BUILD_STATE="ok (prebuilt)"
    else
        step_build
    fi
    if [[ $BUILD_STATE == ok* ]]; then
        [ ! -x "$BUILD/bin/tessera" ] || logged "$BUILD/bin/tessera" info || true
        if [ -f "$BUILD/tests/CTestTestfile.cmake" ]; then
            step_tests
            step_kernel_bandwidth
        else
            TEST_STATE="NOT BUILT (no GoogleTest; see 'prepare')"
        fi
        step_benches
    else
        TEST_STATE="NOT RUN (no build)"
        for name in "${BENCHES[@]}"; do
            printf '%s\tfailed\tnot run: no build\t\n' "$name" >>"$WORK/bench.status"
        done
    fi
    print_summary
}

cmd_summary() { # summary FILE: the table of one JSON-lines file, as the check prints it
    if [ $# -ne 1 ] || [ ! -f "$1" ]; then
        die "summary takes one JSON-lines file"
    fi
    local status st=0
    status="$(mktemp)"
    printf 'file\tok\t-\t%s\n' "$1" >"$status"
    bench_table "$status" || st=$?
    rm -f "$status"
    return "$st"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    case "${1:-}" in
    prepare)
        shift
        cmd_prepare "$@"
        ;;
    summary)
        shift
        cmd_summary "$@"
        ;;
    -h | --help | help) usage ;;
    *) cmd_check "$@" ;;
    esac
}

main "$@"
