#!/usr/bin/env bash
# Fails (exit 1, listing them) when anything but the caller is alive in this pid namespace:
# run as the last step of tests/run-isolated.sh, whose shell is pid 1 of the sandbox.
# Asynchronous teardown (engine shims, a container's last exit) gets up to 10 s first.
# No command substitution here: a subshell would count itself.
set -u
out=${1:?usage: leak-check.sh SCRATCH_FILE}
leaks() {
    ps -e -o pid=,ppid=,stat=,args= >"$out"
    # pid 1 is the sandbox's shell, $$ this script; ps is the one listing.
    awk -v self=$$ '$1 != 1 && $1 != self && $3 !~ /^Z/ && $4 != "ps"' "$out" >"$out.left"
    [ -s "$out.left" ]
}
for _ in $(seq 50); do
    leaks || exit 0
    sleep 0.2
done
echo "leak-check: processes left behind by the tests (pid ppid stat args):"
cat "$out.left"
exit 1
