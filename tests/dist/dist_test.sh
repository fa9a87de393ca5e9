#!/usr/bin/env bash
# The service files of dist/, checked from the outside (CTest: dist_*,
# label "dist").
#
#   dist_test.sh unit UNIT_IN TXBUFD [DROPIN]
#     the unit (dist/systemd/txbufd.service.in, written as `cmake --install`
#     writes it, with TXBUFD's directory as the binaries') has the hardening
#     docs/OPERATING.md promises, and `systemd-analyze verify` accepts it
#     (skipped, exit 77, where systemd-analyze is missing); then with the
#     drop-in DROPIN (dist/txbufd.service.d/squash.conf) in
#     txbufd.service.d/: verify accepts both, and systemd's view of the unit
#     has exactly the capabilities squashing needs, ambient and bounding.
#   dist_test.sh config CONFIG_FILE TXBUFD
#     txbufd starts with the example configuration, every commented key
#     uncommented too (paths replaced by temporary ones, a free port), and
#     stops cleanly; every long option of `txbufd --help` is in the file.
#   dist_test.sh port BIN_DIR
#     in a network namespace of its own (nothing else can hold the port;
#     skipped, exit 77, where one cannot be made): txbufd without --listen
#     listens on 127.0.0.1:7390, and txbuf --server 127.0.0.1 (no port)
#     reaches it.
#   dist_test.sh man MAN_DIR BIN_DIR
#     groff renders each page without a warning, and every --option each
#     binary's --help lists is in its page (so the pages cannot drift from
#     the flags).
set -euo pipefail

mode=${1:?usage: dist_test.sh unit|config|man ...}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/txbuf-dist-test.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

fail() {
  echo "dist_test: FAIL: $*" >&2
  exit 1
}

# The long options a --help text lists: every "--name" token, except the
# placeholders its explanation of the flag syntax uses ("--flag",
# "--noflag", "--no-flag").
long_options() {
  grep -oE -- '--[a-z][a-z0-9_-]*' | grep -vxE -- '--(no-?)?flag' | sort -u
}

unit_mode() {
  local unit_in=${1:?UNIT_IN} txbufd=${2:?TXBUFD} dropin=${3:-}
  [ -f "$unit_in" ] || fail "$unit_in: no such file"
  local unit=$tmp/txbufd.service
  sed -e "s|@TXBUF_BINDIR@|$(dirname "$txbufd")|g" \
      -e 's|@TXBUF_CONFIG@|/etc/txbuf/txbufd.conf|g' "$unit_in" >"$unit"
  ! grep -n '@[A-Z_]*@' "$unit" || fail "$unit_in: a variable install does not set"
  for want in 'ExecStart=.*/txbufd --config .*/txbuf/txbufd.conf' \
              'ExecReload=.*kill -HUP \$MAINPID' 'Restart=on-failure' \
              'User=txbuf' 'NoNewPrivileges=yes' 'ProtectSystem=strict' \
              'ProtectHome=yes' 'PrivateTmp=yes' 'PrivateDevices=yes' \
              'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' \
              'ProtectControlGroups=yes' \
              'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
              'LimitNOFILE=[0-9]+' 'LimitMEMLOCK=[0-9]+[KMG]?'; do
    grep -qxE "$want" "$unit" || fail "$unit has no line matching '$want'"
  done
  if ! command -v systemd-analyze >/dev/null; then
    echo "dist_test: SKIP: no systemd-analyze (package systemd) to verify $unit"
    exit 77
  fi
  # verify checks that ExecStart's binary exists (this build's), and loads
  # the units this one names (network-online.target, ...) from the host.
  local out rc=0
  # (--man=no: the man pages, tested by "man", are not installed here.)
  out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$unit" 2>&1) ||
    rc=$?
  # Only lines about this unit count: a container's own units may be odd.
  local mine
  mine=$(grep -F 'txbufd.service' <<<"$out" || true)
  [ "$rc" -eq 0 ] && [ -z "$mine" ] ||
    fail "systemd-analyze verify (exit $rc): $out"
  echo "dist_test: unit: systemd-analyze verify passed"
  [ -n "$dropin" ] || return 0
  [ -f "$dropin" ] || fail "$dropin: no such file"
  mkdir "$tmp/txbufd.service.d"
  cp "$dropin" "$tmp/txbufd.service.d/"
  rc=0
  out=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$unit" 2>&1) ||
    rc=$?
  mine=$(grep -E 'txbufd.service|squash.conf' <<<"$out" || true)
  [ "$rc" -eq 0 ] && [ -z "$mine" ] ||
    fail "systemd-analyze verify with $(basename "$dropin") (exit $rc): $out"
  # At the debug level verify dumps the unit as systemd sees it, the
  # drop-in merged in.
  local dump caps="cap_chown cap_dac_override cap_fowner"
  dump=$(SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --man=no "$unit" 2>&1 || true)
  for want in "DropIn Path: $tmp/txbufd.service.d/$(basename "$dropin")" \
              "CapabilityBoundingSet: $caps" "AmbientCapabilities: $caps" \
              'User: txbuf'; do
    grep -qxF "$want" <(sed -E 's/^[[:space:]]+//' <<<"$dump") ||
      fail "with $(basename "$dropin"), systemd's view lacks '$want'"
  done
  echo "dist_test: unit: with $(basename "$dropin"): verify passed, capabilities $caps"
}

# start_txbufd CONFIG ARGS...: starts txbufd, waits for "listening on";
# sets `listening` to that line.
start_txbufd() {
  local fifo=$tmp/txbufd.out line=""
  rm -f "$fifo"
  mkfifo "$fifo"
  "$txbufd" --config "$@" >"$fifo" 2>"$tmp/txbufd.err" &
  server_pid=$!
  exec 3<"$fifo"
  while IFS= read -r -t 60 -u 3 line; do
    [[ $line == "listening on "* ]] && break
  done
  [[ $line == "listening on "* ]] ||
    { cat "$tmp/txbufd.err" >&2; fail "txbufd --config $*: did not start"; }
  listening=$line
  echo "$line"
}

stop_txbufd() {
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  cat <&3 >/dev/null
  exec 3<&-
  [ "$rc" -eq 0 ] || { cat "$tmp/txbufd.err" >&2; fail "txbufd exited $rc"; }
}

config_mode() {
  local config=${1:?CONFIG_FILE}
  txbufd=${2:?TXBUFD}
  mkdir "$tmp/export"
  # 1. As installed: the export is the operator's, the rest defaults.
  start_txbufd "$config" --export "$tmp/export" --listen 127.0.0.1:0
  stop_txbufd
  # 2. Every key uncommented: each value shown must parse.
  printf 'secret\n' >"$tmp/token"
  chmod 600 "$tmp/token"
  sed -E -e 's/^#([a-z][a-z-]* = )/\1/' \
      -e "s|^export = .*|export = \"$tmp/export\"|" \
      -e 's|^listen = .*|listen = "127.0.0.1:0"|' \
      -e "s|^token-file = .*|token-file = \"$tmp/token\"|" \
      -e 's|^metrics-listen = .*|metrics-listen = "127.0.0.1:0"|' \
      "$config" >"$tmp/all.conf"
  local keys
  keys=$(grep -cE '^[a-z][a-z-]* = ' "$tmp/all.conf")
  start_txbufd "$tmp/all.conf"
  stop_txbufd
  echo "dist_test: config: txbufd started with all $keys keys"
  # 2b. The [[export]] example in place of `export = ...`: it must parse
  # (owned by whoever runs the test, so that squashing is possible).
  sed -E -e '/^export = /d' -e 's/^#(\[\[export\]\])/\1/' \
      -e 's/^#(  [a-z][a-z-]* = |   +\{)/\1/' \
      -e "s|^(  path = ).*|\1\"$tmp/export\"|" \
      -e "s|^(  squash-uid = ).*|\1$(id -u)|" \
      -e "s|^(  squash-gid = ).*|\1$(id -g)|" \
      "$tmp/all.conf" >"$tmp/exports.conf"
  grep -q '^\[\[export\]\]' "$tmp/exports.conf" ||
    fail "$config has no commented [[export]] example"
  start_txbufd "$tmp/exports.conf"
  grep -q "export data = $tmp/export" "$tmp/txbufd.err" ||
    fail "txbufd did not serve the [[export]] example: $(cat "$tmp/txbufd.err")"
  stop_txbufd
  echo "dist_test: config: the [[export]] example works"
  # 3. Every option is in the file, but those that make no sense there.
  local missing=()
  for opt in $("$txbufd" --help | long_options); do
    case $opt in
      --config | --help | --version | --user) continue ;;
    esac
    grep -qE "^#?${opt#--} = " "$config" || missing+=("$opt")
  done
  [ ${#missing[@]} -eq 0 ] ||
    fail "$config lacks a line for: ${missing[*]}"
  echo "dist_test: config: all passed"
}

man_mode() {
  local man_dir=${1:?MAN_DIR} bin_dir=${2:?BIN_DIR}
  command -v groff >/dev/null || fail "no groff (package groff-base)"
  local page warnings text
  for page in txbufd.8 txbufd.conf.5 txbuf.1 txbuf-bench.1; do
    [ -f "$man_dir/$page" ] || fail "$man_dir/$page: no such file"
    warnings=$(groff -man -Tutf8 -ww -z "$man_dir/$page" 2>&1)
    [ -z "$warnings" ] || fail "$page: groff warns: $warnings"
  done
  # page:binary; the rendered text, with hyphens as ASCII.
  for pair in txbufd.8:server/txbufd txbuf.1:client/txbuf \
              txbuf-bench.1:bench/cli/txbuf-bench; do
    page=${pair%%:*}
    local bin=$bin_dir/${pair#*:}
    [ -x "$bin" ] || fail "$bin: not built"
    text=$(groff -man -Tascii -P-cbu -rHY=0 -rLL=250n "$man_dir/$page" 2>/dev/null)
    local missing=()
    for opt in $("$bin" --help | long_options); do
      grep -qE -- "${opt}([^a-z0-9_-]|\$)" <<<"$text" || missing+=("$opt")
    done
    [ ${#missing[@]} -eq 0 ] ||
      fail "$page lacks what $(basename "$bin") --help lists: ${missing[*]}"
    echo "dist_test: man: $page has every option of $(basename "$bin") --help"
  done
  # txbufd.conf(5) names every key of txbufd's options.
  text=$(groff -man -Tascii -P-cbu -rHY=0 -rLL=250n "$man_dir/txbufd.conf.5" 2>/dev/null)
  local missing=()
  for opt in $("$bin_dir/server/txbufd" --help | long_options); do
    case $opt in --config | --help | --version) continue ;; esac
    grep -qE -- "(^|[^a-z-])${opt#--}([^a-z0-9_-]|\$)" <<<"$text" ||
      missing+=("${opt#--}")
  done
  [ ${#missing[@]} -eq 0 ] || fail "txbufd.conf.5 lacks the keys: ${missing[*]}"
  echo "dist_test: man: all passed"
}

port_mode() {
  local bin_dir=${1:?BIN_DIR}
  if [ "${TXBUF_DIST_TEST_IN_NETNS:-}" != 1 ]; then
    if ! unshare --net true 2>/dev/null; then
      echo "dist_test: SKIP: cannot make a network namespace (unshare --net)"
      exit 77
    fi
    TXBUF_DIST_TEST_IN_NETNS=1 exec unshare --net "$0" port "$bin_dir"
  fi
  ip link set lo up || fail "ip link set lo up"
  txbufd=$bin_dir/server/txbufd
  mkdir "$tmp/export"
  printf 'hello\n' >"$tmp/export/probe.txt"
  start_txbufd /dev/null --export "$tmp/export"
  [ "$listening" = "listening on 127.0.0.1:7390" ] ||
    fail "txbufd without --listen: '$listening', not 127.0.0.1:7390"
  local out
  out=$("$bin_dir/client/txbuf" --server 127.0.0.1 --timeout 10 get probe.txt -) ||
    fail "txbuf --server 127.0.0.1 get: exit $?"
  [ "$out" = hello ] || fail "txbuf --server 127.0.0.1 read '$out'"
  stop_txbufd
  echo "dist_test: port: txbufd and txbuf met on 7390"
}

case "$mode" in
  port) port_mode "${@:2}" ;;
  unit) unit_mode "${@:2}" ;;
  config) config_mode "${@:2}" ;;
  man) man_mode "${@:2}" ;;
  *) fail "unknown mode '$mode'" ;;
esac
