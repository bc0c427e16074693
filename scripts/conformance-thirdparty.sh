#!/usr/bin/env bash
# npm run conformance:thirdparty [-- --quick]: the suite against every third-party adapter
# (adapters/third-party.ts), each judged by its own baseline expectations/<impl>.json, with
# real qemu as the oracle. Adapters whose implementation is not installed report every
# scenario not applicable, with the reason. Not part of npm test's three full runs (time).
#
#   (default)  every feature for every adapter (about 4 minutes: libyal waits out a 60 s hang)
#   --quick    one feature set per adapter, the scenarios that exercise it (under a minute);
#              npm test runs this
#
# The last line is `N passed, N failed` summed over the runs; the exit status is 1 if any
# run had an unexpected result.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=0
mkdir -p reports/logs
[[ ${1:-} == --quick ]] && quick=1

declare -A QUICK=(
  [vhd]="features/formats/vpc/foreign.feature"
  [udif]="features/formats/dmg/read.feature"
  [xo-qcow2]="features/formats/qcow2/foreign.feature"
  [libyal]="features/formats/qcow2/foreign.feature features/formats/vpc/foreign.feature features/formats/vmdk/hostile.feature"
  [dmg2img]="features/formats/dmg"
  [cloop]="features/formats/cloop"
  [bximage]="features/formats/bochs features/formats/vpc/foreign.feature"
  [nbdkit]="features/formats/luks features/formats/raw"
  [vhd-lib]="features/formats/vpc/foreign.feature"
  [mtools]="features/local/fat-files.feature"
  [cryptsetup]="features/formats/luks/info.feature"
)
passed=0 failed=0 status=0
impls=(vhd udif xo-qcow2 libyal vhd-lib dmg2img cloop bximage cryptsetup nbdkit mtools)
for impl in "${impls[@]}"; do
  args=(run --impl "$impl" --oracle qemu)
  if ((quick)); then
    # shellcheck disable=SC2206
    args+=(${QUICK[$impl]})
  fi
  echo "==> qbc ${args[*]}"
  # to a file, not a pipe: a long report through a pipe may be cut short when qbc exits
  log=reports/logs/thirdparty-$impl.log
  node bin/qbc "${args[@]}" >"$log" 2>&1
  rc=$?
  grep -E 'scenario\(s\) in all|^(FAILED|UNEXPECTED|PROBLEMS)' -A3 "$log" | head -40
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  echo "    $impl: ${line:-no summary line} (exit $rc)"
  if [[ -n $line ]]; then
    passed=$((passed + ${line%% *}))
    failed=$((failed + $(awk '{print $3}' <<<"$line")))
  else
    failed=$((failed + 1))
  fi
  ((rc != 0)) && status=1
done
echo "$passed passed, $failed failed"
exit $status
