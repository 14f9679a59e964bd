#!/usr/bin/env bash
# Tessera developer entry point. Every build command first checks the system packages it
# needs (installing missing ones with apt-get when run as root on Debian), configures with
# Ninja and builds with all cores. Re-running any command is cheap and safe.
#
#   scripts/dev.sh deps       check/install system packages
#   scripts/dev.sh demo       Release build in build/, run `tessera demo`
#   scripts/dev.sh test       Release build in build/, run every test with ctest
#   scripts/dev.sh sanitize   address+undefined build in build-asan/, run every test
#   scripts/dev.sh tsan       thread-sanitizer build in build-tsan/, run the scheduler tests
#   scripts/dev.sh bench [ARGS]  Release build in build/, run `tessera-bench ARGS`
#                                (default: overhead)
#
# Environment: TESSERA_CMAKE_ARGS (extra configure arguments, word-split),
# TESSERA_JOBS (build and test parallelism, default: nproc),
# TESSERA_TEST_TIMEOUT (seconds per test, default 600).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${TESSERA_JOBS:-$(nproc 2>/dev/null || echo 2)}"
TEST_TIMEOUT="${TESSERA_TEST_TIMEOUT:-600}"
# Test names (gtest Suite.Test) that exercise the scheduler and its threads; the tsan run.
TSAN_TESTS='Sched|Task|Oracle|Future|Runtime|Shutdown|Coherence|Spill|Array'

# Debian packages. Required ones must be present; optional ones (the StarPU peer of
# tessera-bench) are installed when we can and otherwise only reported.
REQUIRED_PKGS=(build-essential cmake ninja-build pkg-config libgtest-dev nlohmann-json3-dev
    liblz4-dev python3 python3-numpy)
OPTIONAL_PKGS=(libstarpu-dev)

log() { printf '== dev.sh: %s\n' "$*"; }
die() { printf 'dev.sh: error: %s\n' "$*" >&2; exit 1; }

pkg_missing() { # prints the packages of "$@" that are not installed
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
            echo "$p"
    done
}

cmd_deps() {
    if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
        local c
        for c in cc c++ cmake ninja pkg-config; do
            command -v "$c" >/dev/null || die "'$c' not found; install: ${REQUIRED_PKGS[*]}"
        done
        log "not a Debian system: found the tools, assuming GoogleTest is installed"
        return 0
    fi
    local missing_req missing_opt
    missing_req="$(pkg_missing "${REQUIRED_PKGS[@]}" | xargs)"
    missing_opt="$(pkg_missing "${OPTIONAL_PKGS[@]}" | xargs)"
    if [ -z "$missing_req$missing_opt" ]; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if [ -n "$missing_req" ]; then
            echo "dev.sh: missing packages; run:" >&2
            echo "  sudo apt-get update && sudo apt-get install -y $missing_req $missing_opt" >&2
            exit 1
        fi
        log "optional package(s) not installed: $missing_opt (the StarPU bench peer is skipped)"
        return 0
    fi
    log "installing: $missing_req $missing_opt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086 # package lists are words
    apt-get install -y -q --no-install-recommends $missing_req $missing_opt
}

# configure_build DIR BUILD_TYPE [CMAKE ARGS...]
configure_build() {
    local name="$1" dir="$ROOT/$1" type="$2"
    shift 2
    if [ -f "$dir/CMakeCache.txt" ] &&
        ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$dir/CMakeCache.txt"; then
        die "$dir was configured with another generator; remove it (rm -rf '$dir') and retry"
    fi
    log "configure $name ($type)"
    # shellcheck disable=SC2086 # TESSERA_CMAKE_ARGS is a list of words
    cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" \
        ${TESSERA_CMAKE_ARGS:-}
    log "build $name (-j$JOBS)"
    cmake --build "$dir" -j "$JOBS"
}

run_ctest() { # run_ctest DIR [CTEST ARGS...]
    local dir="$ROOT/$1"
    shift
    log "ctest in ${dir#"$ROOT"/} $*"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$JOBS" \
        --timeout "$TEST_TIMEOUT" "$@"
}

find_tool() { # find_tool BUILD_DIR NAME: path of a built executable
    local dir="$ROOT/$1" name="$2" p
    for p in "$dir/bin/$name" "$dir/tools/$name" "$dir/bench/$name" "$dir/$name"; do
        if [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    die "$name was not built in $dir"
}

cmd_demo() {
    cmd_deps
    configure_build build Release
    local exe
    exe="$(find_tool build tessera)"
    log "$exe demo"
    "$exe" demo "$@"
}

cmd_test() {
    cmd_deps
    configure_build build Release
    run_ctest build "$@"
}

cmd_sanitize() {
    cmd_deps
    configure_build build-asan Debug -DTESSERA_SANITIZE=address,undefined
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        run_ctest build-asan "$@"
}

cmd_tsan() {
    cmd_deps
    configure_build build-tsan RelWithDebInfo -DTESSERA_SANITIZE=thread \
        -DTESSERA_BUILD_BENCH=OFF
    # GCC 12's TSan cannot map its shadow memory under the high mmap randomisation of recent
    # kernels ("unexpected memory mapping"); run without address randomisation if allowed.
    local norand=()
    if command -v setarch >/dev/null && setarch "$(uname -m)" -R true 2>/dev/null; then
        norand=(setarch "$(uname -m)" -R)
    fi
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
        "${norand[@]}" ctest --test-dir "$ROOT/build-tsan" --output-on-failure \
        --no-tests=error -j "$JOBS" --timeout "$TEST_TIMEOUT" -R "$TSAN_TESTS" "$@"
}

cmd_bench() {
    cmd_deps
    configure_build build Release
    local exe
    exe="$(find_tool build tessera-bench)"
    [ $# -gt 0 ] || set -- overhead
    log "$exe $*"
    "$exe" "$@"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    [ $# -eq 0 ] || shift
    case "$cmd" in
    deps) cmd_deps ;;
    demo) cmd_demo "$@" ;;
    test) cmd_test "$@" ;;
    sanitize) cmd_sanitize "$@" ;;
    tsan) cmd_tsan "$@" ;;
    bench) cmd_bench "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
