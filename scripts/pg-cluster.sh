#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on loopback, for the test suite, the benchmark and local work.
#
#   scripts/pg-cluster.sh install                     install PostgreSQL with apt-get unless initdb exists (root only)
#   scripts/pg-cluster.sh start [--port N] [--no-fsync]
#                                                     create and start a cluster, print its DATABASE_URL
#   scripts/pg-cluster.sh stop [PORT | URL]           stop the cluster on that port and delete its files
#   scripts/pg-cluster.sh url [PORT]                  print the DATABASE_URL of a running cluster
#
# The cluster lives in a new mktemp directory, listens on 127.0.0.1 only and is meant to
# be thrown away: never point it at data you want to keep. TCP logins use password
# authentication (scram-sha-256), so that passwords and VALID UNTIL are checked as on a
# production server; the superuser postgres gets a random password, which the printed
# DATABASE_URL carries. Unix-socket logins from the cluster's own directory are trusted. Without --port, start takes the first free port
# from 55433 upwards. --no-fsync turns off fsync and synchronous_commit, which speeds up
# tests but makes numbers from the benchmark meaningless.
#
# Environment: PG_BIN_DIR overrides the directory that contains initdb, pg_ctl and pg_isready.
set -euo pipefail

readonly DEFAULT_PORT=55433
readonly PORT_SEARCH_LIMIT=100
readonly MAX_CONNECTIONS=200
readonly START_TIMEOUT_SECONDS=60
readonly STATE_DIR="${TMPDIR:-/tmp}"

die() {
  echo "pg-cluster: $*" >&2
  exit 1
}

log() {
  echo "pg-cluster: $*" >&2
}

# Prints the bin directory of the newest installed PostgreSQL that has initdb, or nothing.
find_bin_dir() {
  if [[ -n "${PG_BIN_DIR:-}" ]]; then
    [[ -x "$PG_BIN_DIR/initdb" ]] || die "PG_BIN_DIR=$PG_BIN_DIR has no initdb"
    echo "$PG_BIN_DIR"
    return
  fi

  # Debian keeps each major version under /usr/lib/postgresql/<version>/bin, off PATH.
  local candidate
  candidate=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$candidate" ]]; then
    dirname "$candidate"
    return
  fi

  if command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
  fi
}

require_bin_dir() {
  local bin_dir
  bin_dir=$(find_bin_dir)
  [[ -n "$bin_dir" ]] || die "no PostgreSQL server found (no initdb); run 'sudo $0 install' or set PG_BIN_DIR"
  echo "$bin_dir"
}

cmd_install() {
  if [[ -n "$(find_bin_dir)" ]]; then
    log "PostgreSQL already installed in $(find_bin_dir)"
    return
  fi
  [[ $EUID -eq 0 ]] || die "installing PostgreSQL needs root; run this command with sudo"

  export DEBIAN_FRONTEND=noninteractive
  log "installing PostgreSQL with apt-get"
  apt-get update
  # Install postgresql-common first and turn off its default cluster, so that installing
  # the server does not also create and start a cluster on port 5432.
  apt-get install -y --no-install-recommends postgresql-common
  sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
  apt-get install -y --no-install-recommends postgresql

  [[ -n "$(find_bin_dir)" ]] || die "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
  log "PostgreSQL installed in $(find_bin_dir)"
}

# Returns success when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

state_file() {
  echo "$STATE_DIR/secrets-broker-pg-$1.dir"
}

# Runs a command as the postgres OS user when this script runs as root, because initdb
# and postgres reject root. Any other user runs the command unchanged. The command starts
# in /, because the caller's directory may be closed to the postgres user.
as_cluster_owner() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Prints the DATABASE_URL of the cluster on port $1, with its superuser password.
cluster_url() {
  local cluster_dir
  cluster_dir=$(cat "$(state_file "$1")")
  echo "postgres://postgres:$(cat "$cluster_dir/password")@127.0.0.1:$1/postgres"
}

cmd_start() {
  local port="" no_fsync=false
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port)
        [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--port needs a port number"
        port=$2
        shift 2
        ;;
      --no-fsync)
        no_fsync=true
        shift
        ;;
      *) die "unknown option for start: $1" ;;
    esac
  done

  local bin_dir
  bin_dir=$(require_bin_dir)
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to own the cluster"
  fi

  if [[ -z "$port" ]]; then
    port=$DEFAULT_PORT
    while port_in_use "$port" || [[ -e "$(state_file "$port")" ]]; do
      port=$((port + 1))
      ((port < DEFAULT_PORT + PORT_SEARCH_LIMIT)) || die "no free port in $DEFAULT_PORT..$((DEFAULT_PORT + PORT_SEARCH_LIMIT - 1))"
    done
  elif port_in_use "$port"; then
    die "port $port is already in use on 127.0.0.1; pick another with --port"
  elif [[ -e "$(state_file "$port")" ]]; then
    die "$(state_file "$port") records a cluster on port $port; run '$0 stop $port' first"
  fi

  local cluster_dir
  cluster_dir=$(mktemp -d "${STATE_DIR}/secrets-broker-pg.XXXXXX")
  if [[ $EUID -eq 0 ]]; then
    chown postgres: "$cluster_dir"
  fi
  chmod 700 "$cluster_dir"
  echo "$cluster_dir" >"$(state_file "$port")"

  local settings=(-c listen_addresses=127.0.0.1 -c "port=$port" -c "max_connections=$MAX_CONNECTIONS"
    -c "unix_socket_directories=$cluster_dir")
  if $no_fsync; then
    settings+=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
  fi

  # Hex, so that the password needs no escaping in the URL.
  (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$cluster_dir/password")
  if [[ $EUID -eq 0 ]]; then
    chown postgres: "$cluster_dir/password"
  fi

  log "initializing a cluster in $cluster_dir with $bin_dir/initdb"
  if ! as_cluster_owner "$bin_dir/initdb" -D "$cluster_dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$cluster_dir/password" \
    --encoding=UTF8 --no-locale >"$cluster_dir/initdb.log" 2>&1; then
    cat "$cluster_dir/initdb.log" >&2
    remove_cluster "$port" "$cluster_dir"
    die "initdb failed; its output is above"
  fi

  log "starting PostgreSQL on 127.0.0.1:$port"
  if ! as_cluster_owner "$bin_dir/pg_ctl" start -D "$cluster_dir/data" -l "$cluster_dir/server.log" \
    -w -t "$START_TIMEOUT_SECONDS" -o "${settings[*]}" >/dev/null; then
    cat "$cluster_dir/server.log" >&2 || true
    remove_cluster "$port" "$cluster_dir"
    die "PostgreSQL did not start on port $port"
  fi

  # pg_ctl -w waits for the postmaster. Check that it also accepts TCP connections.
  local waited=0
  until "$bin_dir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
    if ((waited >= START_TIMEOUT_SECONDS)); then
      cat "$cluster_dir/server.log" >&2 || true
      cmd_stop "$port"
      die "PostgreSQL on port $port did not accept connections within ${START_TIMEOUT_SECONDS}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done

  log "PostgreSQL $("$bin_dir/postgres" --version | awk '{print $3}') ready; stop it with '$0 stop $port'"
  cluster_url "$port"
}

remove_cluster() {
  local port=$1 cluster_dir=$2
  # The data directory belongs to the postgres user, but root can remove it.
  rm -rf -- "$cluster_dir"
  rm -f -- "$(state_file "$port")"
}

# Accepts a port or a URL such as postgres://postgres@127.0.0.1:55433/postgres.
parse_port() {
  local value=${1:-$DEFAULT_PORT}
  if [[ "$value" =~ ^[0-9]+$ ]]; then
    echo "$value"
  elif [[ "$value" =~ :([0-9]+)(/|$) ]]; then
    echo "${BASH_REMATCH[1]}"
  else
    die "expected a port number or a postgres:// URL, got '$value'"
  fi
}

cmd_stop() {
  local port
  port=$(parse_port "${1:-}")
  local file
  file=$(state_file "$port")
  if [[ ! -f "$file" ]]; then
    log "no cluster started by this script is recorded for port $port"
    return
  fi

  local cluster_dir
  cluster_dir=$(<"$file")
  # Only ever delete a directory that this script created.
  [[ "$cluster_dir" == "$STATE_DIR"/secrets-broker-pg.* ]] || die "$file points to '$cluster_dir', which this script did not create"

  if [[ -f "$cluster_dir/data/postmaster.pid" ]]; then
    local bin_dir
    bin_dir=$(require_bin_dir)
    log "stopping PostgreSQL on port $port"
    as_cluster_owner "$bin_dir/pg_ctl" stop -D "$cluster_dir/data" -m fast -w -t "$START_TIMEOUT_SECONDS" >/dev/null ||
      log "pg_ctl stop failed for $cluster_dir; removing its files anyway"
  fi
  remove_cluster "$port" "$cluster_dir"
  log "removed $cluster_dir"
}

cmd_url() {
  local port
  port=$(parse_port "${1:-}")
  [[ -f "$(state_file "$port")" ]] || die "no cluster started by this script is recorded for port $port"
  cluster_url "$port"
}

main() {
  local command=${1:-}
  shift || true
  case "$command" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    url) cmd_url "$@" ;;
    *) die "usage: $0 install | start [--port N] [--no-fsync] | stop [PORT|URL] | url [PORT]" ;;
  esac
}

main "$@"
