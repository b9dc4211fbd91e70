#!/bin/sh
# scripts/test.sh - the whole test suite, from a fresh Debian 12 machine:
# installs what it needs, builds twice (plain, and AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs every test under CTest in both.
# The tests start their own PostgreSQL, dnsmasq and sluice processes.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
scripts/build.sh build-asan -DSANITIZE='address;undefined' \
    -DCMAKE_BUILD_TYPE=Debug
# Two tests per core: most scenario tests wait on timers, sockets and
# fsyncs (the plain pass used ~45 % of two cores at -j2); their deadlines
# are polled with slack for a loaded box (tests/harness, SLUICE_WAIT_SCALE).
# At -j4 on the 2-core VM both passes took 7.5 min instead of 15.
jobs=$(($(nproc) * 2))
status=0
# The Ansible tests build their own (plain) binaries through the role, so
# a sanitizer pass would only repeat them: they run once, and beside both
# passes rather than in a slot of the plain one.  ansible_apply is by far
# the longest test (compiling, ~80 tasks), mostly CPU, while the scenario
# tests mostly wait on timers: so it no longer holds up the plain pass's
# end, gets the whole run's idle CPU, and at nice 5 takes it after the
# timing-sensitive tests.  (Both ctest runs write build/Testing/Temporary;
# its LastTest.log is then of little use: read the output below.)
ansible_log=$(mktemp)
nice -n 5 ctest --test-dir build --output-on-failure -L ansible \
    >"$ansible_log" 2>&1 &
ansible_pid=$!
ctest --test-dir build --output-on-failure -j"$jobs" -LE ansible || status=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE ansible ||
    status=1
wait "$ansible_pid" || status=1
echo "--- the Ansible tests (plain build, run beside both passes)"
cat "$ansible_log"
rm -f "$ansible_log"
exit $status
