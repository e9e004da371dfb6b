#!/bin/sh
# Install the real servers the tests talk to, when missing and when we are root.
# Not root: say what is missing; the fixtures then skip (or fail, with CI=true).
set -u
need=""
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need="$need dovecot-imapd"
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need="$need postgresql"
command -v tmux >/dev/null 2>&1 || need="$need tmux"
command -v mu >/dev/null 2>&1 || need="$need maildir-utils"
command -v notmuch >/dev/null 2>&1 || need="$need notmuch"
# the website channel's end-to-end tests drive a real headless Chromium through chromedriver
[ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || need="$need chromium"
[ -x /usr/bin/chromedriver ] || command -v chromedriver >/dev/null 2>&1 || need="$need chromium-driver"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing test peers:$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  # services must not start at install time (policy-rc.d); the tests start their own
  apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 || {
    echo "warning: could not install:$need" >&2; exit 0; }
else
  echo "warning: missing test peers:$need (not root: tests needing them will skip; with CI=true they fail)" >&2
fi
exit 0
