#!/bin/sh
# pbxdesk: the armed rollback of one apply ("commit confirmed"). pbxdesk writes this file into
# the apply's backup folder and starts it detached before it changes anything on the PBX:
#   sh rollback.sh SECONDS [HOLD]   wait, then roll back unless the apply was confirmed meanwhile.
# Whoever renames "armed" first decides: this script (to "rolling-back"), or the laptop (to
# "confirmed" once Asterisk runs the new configuration). A laptop that rolls back by itself
# renames it to "laptop-rolling-back" and, when done, to "rolled-back": should it vanish half-way,
# this script finds "laptop-rolling-back" still there and finishes the job (every step here can
# run twice: it restores contents, not differences).
# While the laptop makes one change (swaps the files, syncs the rows, reloads) it holds the
# rollback: "armed" is renamed to "changing" and back. This script waits for it to come back,
# and takes "changing" over only if it stays for HOLD seconds (default 60: the laptop is gone in
# the middle of a change), so a rollback never runs beside a change.
# It only ever touches the apply that armed it: see the lock check below.
# The manifest was written by pbxdesk: "restore PATH", "remove PATH" (paths checked: letters,
# digits, '.', '_', '-', '/', never ".."), "reload MODULE".
set -u
case "${1:-}" in '' | *[!0-9]*) exit 2 ;; esac
hold=${2:-60}
case "$hold" in '' | *[!0-9]*) exit 2 ;; esac
d=$(cd "$(dirname "$0")" && pwd) || exit 1
etc=$(cd "$d/../.." && pwd) || exit 1
sleep "$1"
waited=0
until mv "$d/armed" "$d/rolling-back" 2>/dev/null ||
  mv "$d/laptop-rolling-back" "$d/rolling-back" 2>/dev/null; do
  [ -e "$d/changing" ] || exit 0
  if [ "$waited" -ge "$hold" ]; then
    mv "$d/changing" "$d/rolling-back" 2>/dev/null && break
  fi
  sleep 1
  waited=$((waited + 1))
done
log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$d/rollback.log"; }
# This rollback belongs to the apply whose lock note is in lock-owner (its id and time). If
# that apply no longer holds the PBX's lock, it ended (it stopped before changing anything, and
# its "armed" could not be removed), and another apply may be running: its backup must never be
# restored over that one.
if ! cmp -s "$d/lock-owner" "$etc/.pbxdesk-apply.lock/owner"; then
  log "the apply that armed this rollback no longer holds the lock: nothing restored"
  rm -f "$d/db.cnf" "$d/undo.sql"
  mv "$d/rolling-back" "$d/abandoned"
  exit 0
fi
log "the apply was not confirmed within $1 s: rolling back"
ok=1
while read -r op arg; do
  target="$etc/$arg"
  # Temporary files and the rename script of an upload cut short (the laptop could not remove them).
  case "$op" in restore | remove)
    rm -f "$(dirname "$target")/.$(basename "$target")".pbxdesk-*.tmp
    rm -f "$(dirname "$target")"/.pbxdesk-swap-*.sh
    ;;
  esac
  case "$op" in
  restore)
    tmp="$target.pbxdesk-restore"
    # A copy of the file being replaced keeps its owner and mode; the content is then swapped
    # in whole by a rename, so Asterisk never reads half a file.
    if [ -e "$target" ]; then cp -p "$target" "$tmp"; fi
    if cat "$d/files/$arg" >"$tmp" && mv -f "$tmp" "$target"; then :; else
      ok=0
      log "could not restore $arg"
    fi
    ;;
  remove)
    rm -f "$target" || { ok=0; log "could not remove $arg"; }
    ;;
  esac
done <"$d/manifest"
if [ -s "$d/undo.sql" ]; then
  if { echo 'START TRANSACTION;'; cat "$d/undo.sql"; echo 'COMMIT;'; } |
    mysql --defaults-extra-file="$d/db.cnf" >>"$d/rollback.log" 2>&1; then
    log "realtime rows restored"
  else
    ok=0
    log "the realtime rows were NOT restored"
  fi
fi
rm -f "$d/db.cnf" "$d/undo.sql"
while read -r op arg; do
  if [ "$op" = reload ]; then
    asterisk -rx "module reload $arg.so" >>"$d/rollback.log" 2>&1 || ok=0
  fi
done <"$d/manifest"
# The apply's lock, if it is still this apply's.
if cmp -s "$d/lock-owner" "$etc/.pbxdesk-apply.lock/owner"; then
  rm -f "$etc/.pbxdesk-apply.lock/owner" && rmdir "$etc/.pbxdesk-apply.lock"
fi
if [ "$ok" = 1 ]; then state=rolled-back; log "rolled back"; else
  state=rollback-failed
  log "rolled back INCOMPLETELY: see the lines above"
fi
mv "$d/rolling-back" "$d/$state"
# A note beside the backups, so the next apply from any laptop finds and reports this at once.
: >"$d/../$state.$(basename "$d")"
