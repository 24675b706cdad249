#!/usr/bin/env bash
# Prepares a Firefox ESR that has the add-on deployed the way a library deploys it: an enterprise
# policy (policies.json in Firefox's installation folder) force-installs the .xpi and presets the
# server and the library code through the add-on's managed storage.
#
#   scripts/demo.sh prepare DIR XPI SERVER   DIR/firefox (Firefox with the policy), DIR/profile
#   scripts/demo.sh install DIR              a first, headless start that lets the policy install
#                                            the add-on, so the next start opens the desk at once
#   scripts/demo.sh desk-url                 the desk's address in that profile
#
# Policies live in the installation folder and would apply to every profile, so the demo gets a
# private Firefox: a copy of the system's ESR (hard links where possible, so it costs no space).
set -euo pipefail

ADDON_ID="koha-offline-circ@koha-desk.org"
ADDON_UUID="5b0c6a38-7d1e-4c39-9a55-0f6e2f6b8a11"
SYSTEM_FIREFOX=/usr/lib/firefox-esr
BRANCHCODE=DE-627

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

prepare() {
  local dir=$1 xpi=$2 server=$3
  [ -d "$SYSTEM_FIREFOX" ] || die "Firefox ESR is not installed (run ./build.sh test once)"
  [ -f "$xpi" ] || die "no add-on at $xpi (run ./build.sh)"
  xpi=$(realpath "$xpi")
  rm -rf "$dir"
  mkdir -p "$dir"
  cp -al "$SYSTEM_FIREFOX" "$dir/firefox" 2>/dev/null || cp -a "$SYSTEM_FIREFOX" "$dir/firefox"
  # A new file, not a write through a hard link into the system's copy.
  rm -rf "$dir/firefox/distribution"
  mkdir -p "$dir/firefox/distribution" "$dir/profile"
  cat > "$dir/firefox/distribution/policies.json" <<EOF
{
  "policies": {
    "ExtensionSettings": {
      "$ADDON_ID": {
        "installation_mode": "force_installed",
        "install_url": "file://$xpi"
      }
    },
    "3rdparty": {
      "Extensions": {
        "$ADDON_ID": { "server": "$server", "branchcode": "$BRANCHCODE" }
      }
    },
    "DisableAppUpdate": true,
    "DontCheckDefaultBrowser": true,
    "OverrideFirstRunPage": "",
    "OverridePostUpdatePage": ""
  }
}
EOF
  # The .xpi is not signed by Mozilla: Firefox ESR installs it when told to.
  cat > "$dir/profile/user.js" <<EOF
user_pref("xpinstall.signatures.required", false);
user_pref("extensions.webextensions.uuids", "{\"$ADDON_ID\":\"$ADDON_UUID\"}");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("browser.aboutwelcome.enabled", false);
EOF
}

# A policy installs the add-on a few seconds into the first start, after the first window has
# loaded its addresses: the desk's would not exist yet.
install() {
  local dir=$1 firefox_pid tries=0
  "$dir/firefox/firefox-esr" --headless --no-remote --profile "$dir/profile" about:blank \
    >"$dir/first-start.log" 2>&1 &
  firefox_pid=$!
  until grep -q "\"$ADDON_ID\"" "$dir/profile/extensions.json" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 600 ] || ! kill -0 "$firefox_pid" 2>/dev/null; then
      kill "$firefox_pid" 2>/dev/null || true
      die "the policy did not install the add-on (see $dir/first-start.log)"
    fi
    sleep 0.1
  done
  kill "$firefox_pid" 2>/dev/null || true
  wait "$firefox_pid" 2>/dev/null || true
}

case "${1:-}" in
  prepare)
    [ $# -eq 4 ] || die "usage: scripts/demo.sh prepare DIR XPI SERVER"
    prepare "$2" "$3" "$4"
    ;;
  install)
    [ $# -eq 2 ] || die "usage: scripts/demo.sh install DIR"
    install "$2"
    ;;
  desk-url)
    printf 'moz-extension://%s/desk.html\n' "$ADDON_UUID"
    ;;
  *)
    die "usage: scripts/demo.sh prepare DIR XPI SERVER | install DIR | desk-url"
    ;;
esac
