#!/usr/bin/env bash
# crun 1.8.1 refuses this host's hybrid cgroup layout; hide the cgroup2 mount from it in a
# private mount namespace (as ../shared/ENVIRONMENT.md describes). Every crun call pays for
# this wrapper, which the benchmark's crun figures include.
exec unshare -m --propagation slave sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec crun "$@"' crun "$@"
