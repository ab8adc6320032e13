#!/usr/bin/env bash
# `npm test`: the whole suite in two lanes at once, one per VPS of the test bed (vitest.config.ts says which project
# runs where): unit, module and the integration files on the first VPS; the data scenarios and the real engine's suite
# on the second. Each lane is a vitest of its own: one vitest runs every project without file parallelism in a single
# queue. Arguments go to both (a filter that matches nothing in one lane is fine there). The test bed comes up once,
# first, and down at the end unless TESTBED_KEEP=1.
set -uo pipefail
cd "$(dirname "$0")/.."
keep=${TESTBED_KEEP:-0}
bash test/testbed/up.sh || exit 1
export TESTBED_KEEP=1 TESTBED_UP=1
vitest=node_modules/.bin/vitest
rc2=$(mktemp)
# niced (as the second VPS's engine is, and the Dagger engine): the first lane's scenarios are the timed ones
{ nice -n 10 "$vitest" run --passWithNoTests --project data --project engine "$@"; echo $? > "$rc2"; } 2>&1 | sed -u 's/^/[vps2] /' &
lane2=$!
"$vitest" run --passWithNoTests --project unit --project module --project integration "$@"
r1=$?
wait "$lane2"
r2=$(cat "$rc2" 2>/dev/null || echo 1)
rm -f "$rc2"
[ "$keep" = 1 ] || bash test/testbed/down.sh
echo "tests: first VPS's lane exit $r1, second VPS's lane exit $r2"
[ "$r1" = 0 ] && [ "$r2" = 0 ]
