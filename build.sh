#!/usr/bin/env bash
# Builds, tests and benchmarks the Koha offline circulation add-on.
#
#   ./build.sh          install what is missing, build, lint, package dist/*.xpi
#   ./build.sh test     the above, plus Firefox ESR and geckodriver, the test build of the pages
#                       (www-test/, dist-test/: the add-on with its test hooks), then every test
#   ./build.sh bench    the above, then the benchmarks (on the test build); writes BENCHMARKS.md
#   ./build.sh test-build  what ./build.sh test installs and builds, without running tests
#   ./build.sh soak     the send-run simulation over a million seeded histories (release build;
#                       KOC_SOAK_HISTORIES and KOC_SOAK_FIRST_SEED change how many and from where)
#   ./build.sh run      try the add-on: the Koha stand-in with demo patrons and items, and Firefox
#                       with the add-on deployed by policy, pointed at the stand-in, the desk open
#   ./build.sh standin  run the Koha stand-in on 127.0.0.1:8480 to try the add-on without a Koha
#
# Every install step lives here, so a fresh clone needs only Rust (rustup), Node/npm and apt.
set -euo pipefail
cd "$(dirname "$0")"

NAME=koha-offline-circ
CRATE=koha_offline_circ
TARGET=wasm32-unknown-unknown
GECKODRIVER_VERSION=0.37.1
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nbuild.sh: FAILED: %s\n' "$*" >&2; exit 1; }

# The wasm-bindgen CLI must match the crate exactly; the crate version is pinned with "=".
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

ensure_build_tools() {
  step "toolchain: wasm32 target"
  rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET" \
    || die "could not add the $TARGET target with rustup"

  local want have
  [ -f Cargo.lock ] || cargo generate-lockfile
  want=$(wasm_bindgen_version)
  [ -n "$want" ] || die "wasm-bindgen not found in Cargo.lock"
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  step "toolchain: wasm-bindgen-cli $want (have: ${have:-none})"
  if [ "$have" != "$want" ]; then
    # --locked fails for this version (a yanked transitive dependency), see README.
    cargo install wasm-bindgen-cli --version "$want" --force \
      || die "could not install wasm-bindgen-cli $want"
  fi

  if ! command -v advzip >/dev/null; then
    step "toolchain: advzip (apt advancecomp), to pack the .xpi smaller"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends advancecomp; } \
      || printf 'note: could not install advancecomp; the .xpi will be larger\n'
  fi

  step "toolchain: web-ext and wasm-opt (npm ci)"
  if [ ! -x node_modules/.bin/web-ext ] || [ ! -x node_modules/.bin/wasm-opt ] \
     || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund || die "npm ci failed"
  fi
}

ensure_test_tools() {
  if ! command -v firefox-esr >/dev/null; then
    step "toolchain: Firefox ESR (apt)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends firefox-esr || die "could not install firefox-esr"
  fi
  # Language packs, so the interface can be tested in each of its languages (the add-on follows
  # the browser's UI language, and a bare ESR has only en-US).
  local lang missing=()
  for lang in cs de es-ES fr it; do
    [ -f "/usr/lib/firefox-esr/browser/extensions/langpack-$lang@firefox-esr.mozilla.org.xpi" ] \
      || missing+=("firefox-esr-l10n-${lang,,}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "toolchain: Firefox ESR language packs (apt): ${missing[*]}"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}" \
      || die "could not install the Firefox language packs"
  fi
  local have
  have=$(geckodriver --version 2>/dev/null | awk 'NR==1 {print $2}' || true)
  step "toolchain: geckodriver $GECKODRIVER_VERSION (have: ${have:-none})"
  if [ "$have" != "$GECKODRIVER_VERSION" ]; then
    cargo install geckodriver --version "$GECKODRIVER_VERSION" --locked --force \
      || die "could not install geckodriver"
  fi
}

# Builds the unpacked pages into folder $1: the wasm core (further arguments go to cargo build,
# e.g. --features test-hooks), its glue, manifest.json, extension/ without its test/ folder, and
# the merged translations.
build_pages() {
  local out=$1
  shift
  step "build: release wasm $*"
  cargo build --locked --release --lib --target "$TARGET" -p "$NAME" "$@"

  step "build: wasm-bindgen --target web ($out/)"
  rm -rf "$out"
  mkdir -p "$out/pkg"
  wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" \
    "target/$TARGET/release/$CRATE.wasm"

  # npm's binaryen only: Debian's wasm-opt 108 corrupts wasm-bindgen's output.
  step "build: wasm-opt -Oz (binaryen from npm)"
  node_modules/.bin/wasm-opt -Oz --enable-reference-types --enable-bulk-memory \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-multivalue \
    "$out/pkg/${CRATE}_bg.wasm" -o "$out/pkg/${CRATE}_bg.wasm"

  step "build: assemble $out/"
  cp manifest.json "$out/"
  cp -r extension/. "$out/"
  rm -rf "$out/test"
  node scripts/locales.mjs i18n "$out" || die "translations are incomplete (i18n/)"
  # Firefox reads only "message" and "placeholders"; descriptions are for translators (i18n/).
  node -e 'const fs = require("fs");
    for (const f of process.argv.slice(1)) {
      const all = JSON.parse(fs.readFileSync(f, "utf8"));
      for (const e of Object.values(all)) delete e.description;
      fs.writeFileSync(f, JSON.stringify(all));
    }' "$out"/_locales/*/messages.json || die "could not pack the translations"
}

build_addon() {
  build_pages www

  step "build: web-ext lint"
  web-ext lint --source-dir www --warnings-as-errors --no-config-discovery \
    || die "web-ext lint reported problems"

  step "build: package dist/"
  local version
  version=$(node -p 'require("./manifest.json").version')
  mkdir -p dist
  rm -f dist/*.xpi
  web-ext build --source-dir www --artifacts-dir dist --overwrite-dest \
    --filename "$NAME-$version.xpi" --no-config-discovery >/dev/null
  # Zopfli deflate (advancecomp): the same zip, about 5 % smaller than web-ext's.
  if command -v advzip >/dev/null; then
    advzip --recompress --shrink-insane --quiet "dist/$NAME-$version.xpi" \
      || die "advzip could not recompress the .xpi"
  else
    printf 'note: advzip (apt: advancecomp) missing; the .xpi is not recompressed\n'
  fi
  printf 'built dist/%s-%s.xpi (%s bytes; wasm %s bytes)\n' "$NAME" "$version" \
    "$(stat -c %s "dist/$NAME-$version.xpi")" "$(stat -c %s "www/pkg/${CRATE}_bg.wasm")"
}

# The test build of the pages, which the Firefox tests and the benchmarks install: www-test/ is
# www/ with the core's test-hooks exports (src/web/test_hooks.rs) and extension/test/hooks.js
# loaded by desk.html; dist-test/ packs it for the test that installs a packed add-on. Neither
# is ever shipped.
build_test_pages() {
  build_pages www-test --features test-hooks
  step "build: test hooks into www-test/"
  cp -r extension/test www-test/
  sed -i 's#^</head>#  <script type="module" src="test/hooks.js"></script>\n</head>#' www-test/desk.html
  grep -q 'src="test/hooks.js"' www-test/desk.html || die "could not add the test hooks to desk.html"
  local version
  version=$(node -p 'require("./manifest.json").version')
  rm -rf dist-test
  web-ext build --source-dir www-test --artifacts-dir dist-test --overwrite-dest \
    --filename "$NAME-$version-test.xpi" --no-config-discovery >/dev/null
}

run_tests() {
  step "test: cargo fmt --check"
  cargo fmt --all -- --check || die "code is not formatted (run cargo fmt)"

  step "test: clippy (native)"
  cargo clippy --locked --workspace --all-targets -- -D warnings

  step "test: clippy (wasm32)"
  cargo clippy --locked --lib --test web --target "$TARGET" -p "$NAME" -- -D warnings

  step "test: clippy (wasm32, with the test hooks)"
  cargo clippy --locked --lib --target "$TARGET" -p "$NAME" --features test-hooks -- -D warnings

  # KOC_XPI_REQUIRED: tests/shipped_addon.rs checks dist/*.xpi instead of skipping.
  step "test: native unit, integration and property tests"
  KOC_XPI_REQUIRED=1 cargo test --locked -p "$NAME"

  step "test: wasm binding tests in headless Firefox (wasm-bindgen-test)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    GECKODRIVER="$(command -v geckodriver)" WASM_BINDGEN_USE_BROWSER=1 \
    cargo test --locked --target "$TARGET" -p "$NAME" --test web

  step "test: Koha stand-in and Firefox end-to-end tests"
  KOC_ADDON_DIR="$PWD/www-test" KOC_E2E_REQUIRED=1 \
    cargo test --locked --no-fail-fast -p e2e -- --test-threads=1
}

run_benches() {
  step "bench: see BENCHMARKS.md"
  [ -x scripts/bench.sh ] || die "scripts/bench.sh missing"
  scripts/bench.sh
}

# The demo: the stand-in on 127.0.0.1:8480, and a private Firefox ESR whose enterprise policy
# installs the add-on and presets its server and library (scripts/demo.sh).
run_demo() {
  local port=8480 demo=target/demo xpi
  xpi=$(ls dist/*.xpi 2>/dev/null | head -n 1)
  [ -n "$xpi" ] || die "no dist/*.xpi"
  step "run: Koha stand-in on 127.0.0.1:$port"
  cargo build --locked --release -p e2e --bin koha-standin
  target/release/koha-standin --port "$port" &
  local standin=$!
  # shellcheck disable=SC2064 # the pid now: the variable is gone when the trap runs
  trap "kill $standin 2>/dev/null" EXIT
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || die "the stand-in did not start on port $port"
    kill -0 "$standin" 2>/dev/null || die "the stand-in stopped (is port $port taken?)"
    sleep 0.1
  done
  step "run: Firefox ESR with the add-on deployed by policy ($demo)"
  scripts/demo.sh prepare "$demo" "$xpi" "http://127.0.0.1:$port"
  scripts/demo.sh install "$demo"
  printf 'Server and library are preset; type the librarian above, then "Test connection".\n'
  printf 'Close Firefox to stop the demo.\n'
  "$demo/firefox/firefox-esr" --no-remote --profile "$demo/profile" \
    "$(scripts/demo.sh desk-url)" || true
}

case "${1:-build}" in
  build)
    ensure_build_tools
    build_addon
    ;;
  test)
    ensure_build_tools
    ensure_test_tools
    build_addon
    build_test_pages
    run_tests
    step "all tests passed"
    ;;
  test-build)
    ensure_build_tools
    ensure_test_tools
    build_addon
    build_test_pages
    ;;
  bench)
    ensure_build_tools
    ensure_test_tools
    build_addon
    build_test_pages
    run_benches
    ;;
  soak)
    step "soak: ${KOC_SOAK_HISTORIES:-1000000} simulated histories from seed ${KOC_SOAK_FIRST_SEED:-0}"
    KOC_SOAK_HISTORIES="${KOC_SOAK_HISTORIES:-1000000}" KOC_SOAK_FIRST_SEED="${KOC_SOAK_FIRST_SEED:-0}" \
      cargo test --locked --release -p "$NAME" --test simulation every_history_keeps_the_promises \
      -- --nocapture
    ;;
  run)
    ensure_build_tools
    ensure_test_tools
    build_addon
    run_demo
    ;;
  standin)
    cargo run --locked --release -p e2e --bin koha-standin -- "${@:2}"
    ;;
  *)
    die "unknown command '$1' (use: build, test, test-build, bench, soak, run, standin)"
    ;;
esac
