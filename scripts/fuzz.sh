#!/bin/sh
# scripts/fuzz.sh - runs one libFuzzer target longer than CTest does.
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   scripts/fuzz.sh list
#
# TARGET is a file name of tests/fuzz/ without .c (smtp_cmd, smtp_data, sasl,
# proxy_hdr, smtp_reply, policy_yaml, controller_node, controller_admin).
# Builds build-fuzz/ with clang and -DSLUICE_FUZZ=ON, copies the committed
# seeds into build-fuzz/fuzz-corpus/TARGET (the working corpus grows there,
# tests/fuzz/corpus is never written) and fuzzes for SECONDS.  The
# controller_* targets get a throwaway PostgreSQL (tests/harness/pg.py) so
# they reach past the store.  Crashes land in build-fuzz/fuzz-crash/TARGET/;
# replay one with build-fuzz/tests/fuzz_TARGET FILE (or, in a gcc build,
# build/tests/replay_TARGET FILE).  Exit status: libFuzzer's (0 = clean).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
bdir=${SLUICE_FUZZ_BUILD:-$root/build-fuzz}

if [ "${1:-}" = list ] || [ $# -lt 2 ]; then
	echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]" >&2
	echo "targets:" $(cd tests/fuzz && ls *.c | sed -n \
	    '/^replay.c$/d;/^fuzz_/d;s/\.c$//p') >&2
	[ "${1:-}" = list ] && exit 0
	exit 2
fi
target=$1
secs=$2
shift 2
[ -f "tests/fuzz/$target.c" ] || { echo "no tests/fuzz/$target.c" >&2; exit 2; }

if [ ! -f "$bdir/CMakeCache.txt" ]; then
	CC=clang cmake -S . -B "$bdir" -DSLUICE_FUZZ=ON -DSLUICE_WERROR=OFF \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$bdir" -j"$(nproc)" --target "fuzz_$target" >/dev/null

work=$bdir/fuzz-corpus/$target
crash=$bdir/fuzz-crash/$target
mkdir -p "$work" "$crash"
cp -n tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true

pgstate=
cleanup() {
	if [ -n "$pgstate" ]; then
		python3 tests/harness/pg.py stop "$pgstate" >/dev/null 2>&1 || :
	fi
}
trap cleanup EXIT INT TERM
case $target in
controller_*)
	pgstate=$(mktemp /tmp/sluice-fuzz-pg.XXXXXX)
	python3 tests/harness/pg.py start "$pgstate" >/dev/null
	pgbase=$(python3 -c 'import json,sys
st = json.load(open(sys.argv[1]))
print("host=%s port=%d user=sluice" % (st["base"], st["port"]))' "$pgstate")
	psql -X -q -d "$pgbase dbname=postgres" -c 'CREATE DATABASE sluice'
	SLUICE_FUZZ_PG="$pgbase dbname=sluice"
	export SLUICE_FUZZ_PG
	;;
esac

# stderr of the target (controller and sluicectl log lines) is closed;
# libFuzzer and the sanitizers still report on their own descriptor.
start=$(date +%s)
status=0
"$bdir/tests/fuzz_$target" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=2 \
    -artifact_prefix="$crash/" "$@" "$work" || status=$?
end=$(date +%s)
echo "fuzz $target: $((end - start)) s, exit $status," \
    "corpus $(ls "$work" | wc -l) inputs" >&2
exit $status
