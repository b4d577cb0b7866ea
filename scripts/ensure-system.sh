#!/usr/bin/env bash
# Make sure the system packages needed to run our own servers are installed
# (Debian 12). Idempotent and silent when everything is present; installs only
# what is missing, with one `apt-get update && apt-get install -y ...`.
set -euo pipefail

pg_bin=/usr/lib/postgresql/15/bin
# CDC_ENSURE_DRY_RUN=1: only print what would be installed.
# CDC_ENSURE_EXTRA_CHECK="cmd:package": an extra requirement (used to test this script).

# "check:package" pairs. A check is a command name (looked up in PATH and in
# /usr/sbin, /sbin) or an absolute path to an executable.
requirements=(
  "java:openjdk-17-jre-headless"
  "mvn:maven"
  "$pg_bin/initdb:postgresql-15"
  "$pg_bin/postgres:postgresql-15"
  "$pg_bin/pg_ctl:postgresql-15"
  "psql:postgresql-client-15"
  "mariadbd:mariadb-server"
  "mariadb-install-db:mariadb-server"
  "mariadb:mariadb-client"
  "redis-server:redis-server"
  "redis-cli:redis-server"
  # libfaketime: clock-skewed server processes in the multi-master tests (test/mesh)
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1:faketime"
)
[ -n "${CDC_ENSURE_EXTRA_CHECK:-}" ] && requirements+=("$CDC_ENSURE_EXTRA_CHECK")

have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] ;;
  esac
}

missing=()
for req in "${requirements[@]}"; do
  check="${req%%:*}"
  pkg="${req#*:}"
  if ! have "$check"; then
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

# Our servers listen on ports inside Linux's ephemeral range (32768-60999). Reserve them, so an
# outgoing connection never borrows one while its server is down for a restart (the restart would
# then fail with "address in use"). Best effort: needs root and a writable /proc.
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
ours="18081,19092-19093,19192-19393,19492-19493,33300-33399,55400-55599"
if [ -w "$reserved" ] && [ "$(cat "$reserved" 2>/dev/null)" != "$ours" ]; then
  current=$(cat "$reserved" 2>/dev/null)
  case ",$current," in
    *",$ours,"*) ;;
    *) echo "${current:+$current,}$ours" > "$reserved" 2>/dev/null || true ;;
  esac
fi

[ "${#missing[@]}" -eq 0 ] && exit 0

echo "ensure-system: installing missing packages: ${missing[*]}" >&2
if [ -n "${CDC_ENSURE_DRY_RUN:-}" ]; then
  echo "ensure-system: dry run, would run: apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "ensure-system: not root and no sudo; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
