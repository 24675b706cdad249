#!/usr/bin/env bash
# The benchmarks behind `./build.sh bench`: core (criterion), browser (Firefox through the e2e
# harness, on the test build www-test/), sizes (of the shipped www/ and dist/). Writes
# BENCHMARKS.md. Expects ./build.sh bench to have built all three.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> bench: core (criterion)"
rm -rf target/criterion
cargo bench --locked -p koha-offline-circ --bench core
echo "==> bench: browser and report"
cargo run --locked --profile bench-e2e -p e2e --bin bench-report -- "$PWD"
