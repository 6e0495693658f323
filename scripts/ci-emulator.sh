#!/usr/bin/env bash
# dmaprof on an Android emulator in CI: snapshot, run the test suite, snapshot, diff against
# the budgets. Meant to be the single `script:` line of ReactiveCircus/android-emulator-runner
# (each line of `script:` runs in its own `sh -c`, so the logic lives here):
#
#     script: bash scripts/ci-emulator.sh
#
# Environment (all optional):
#   DMAPROF               how to run dmaprof (default: dmaprof; e.g. "python -m dmaprof")
#   DMAPROF_OUT           directory for the captures and reports (default: dmaprof-out)
#   DMAPROF_BUDGETS       budgets file (default: .github/dmaprof-budgets.toml, else
#                         dmaprof-budgets.toml, when present)
#   DMAPROF_FAIL_ON       extra --fail-on rules, separated by spaces (e.g. "total>10MiB")
#   DMAPROF_TEST_CMD      the test suite (default: ./gradlew connectedCheck)
#   DMAPROF_ROOT          --root of the snapshots: auto (default), never, require
#   DMAPROF_ON_UNKNOWN    --on-unknown of the diff: error (default: exit 12), warn, pass
#   DMAPROF_BOOT_TIMEOUT  seconds to wait for the device (default: 300)
#   ANDROID_SERIAL        the device (default: emulator-$EMULATOR_PORT, set by the runner)
#
# Writes DMAPROF_OUT/{before.dmaprof, after.dmaprof, diff.json, dmaprof-junit.xml}; dmaprof
# appends its summary to $GITHUB_STEP_SUMMARY and prints ::error/::warning annotations.
# Exit status: the test suite's when it failed, else dmaprof diff's (0 within budget, 10 when
# a budget is breached, 12 when a rule could not be judged: e.g. kernel_only on an image
# whose adbd refused root); a failed snapshot exits with dmaprof's device error code (3-9).
set -euo pipefail

log() { printf 'ci-emulator: %s\n' "$*" >&2; }

read -r -a dmaprof <<<"${DMAPROF:-dmaprof}"
out=${DMAPROF_OUT:-dmaprof-out}
tests=${DMAPROF_TEST_CMD:-./gradlew connectedCheck}
root=${DMAPROF_ROOT:-auto}
budgets=${DMAPROF_BUDGETS:-}
if [ -z "$budgets" ]; then
  for candidate in .github/dmaprof-budgets.toml dmaprof-budgets.toml; do
    if [ -f "$candidate" ]; then budgets=$candidate; break; fi
  done
fi
if [ -z "${ANDROID_SERIAL:-}" ] && [ -n "${EMULATOR_PORT:-}" ]; then
  export ANDROID_SERIAL="emulator-$EMULATOR_PORT"
fi
mkdir -p "$out"

wait_for_device() {
  # bounded: emulators hang at boot or go "offline" (android-emulator-runner #280, #324)
  if ! timeout "${DMAPROF_BOOT_TIMEOUT:-300}" adb wait-for-device; then
    log "the device did not come up within ${DMAPROF_BOOT_TIMEOUT:-300} s"
    exit 4
  fi
}

if command -v adb >/dev/null 2>&1; then
  wait_for_device
  # default/google_apis images let adbd run as root: every process becomes readable.
  # Production and Play Store images refuse; dmaprof then records what it could not read.
  adb root >/dev/null 2>&1 || true
  wait_for_device
fi

log "snapshot before the tests"
"${dmaprof[@]}" snapshot -q --force --root "$root" -o "$out/before.dmaprof" >/dev/null

log "running the test suite: $tests"
set +e
sh -c "$tests"
tests_rc=$?
set -e
log "the test suite exited with $tests_rc"

log "snapshot after the tests"
"${dmaprof[@]}" snapshot -q --force --root "$root" -o "$out/after.dmaprof" >/dev/null

args=(diff "$out/before.dmaprof" "$out/after.dmaprof" --junit "$out/dmaprof-junit.xml"
      --on-unknown "${DMAPROF_ON_UNKNOWN:-error}")
if [ -n "$budgets" ]; then
  args+=(--budgets "$budgets")
fi
if [ -n "${DMAPROF_FAIL_ON:-}" ]; then
  read -r -a rules <<<"$DMAPROF_FAIL_ON"
  for rule in "${rules[@]}"; do args+=(--fail-on "$rule"); done
fi
set +e
# the table goes to the job log, the JSON to the artifacts
"${dmaprof[@]}" "${args[@]}" --top 10 --json "$out/diff.json"
diff_rc=$?
set -e

if [ "$tests_rc" -ne 0 ]; then
  exit "$tests_rc"
fi
exit "$diff_rc"
