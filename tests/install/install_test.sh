#!/usr/bin/env bash
# The install, checked from the outside (CTest: install_consumer, install_deb;
# label "install").
#
#   install_test.sh consumer BUILD_DIR CXX
#     1. cmake --install BUILD_DIR --prefix TMP/prefix; the binaries, the
#        libraries (the shared one with its SONAME), the package files are
#        there, and every txbuf header an installed header includes is
#        installed too; the unit, the example configuration and the man
#        pages are there, the unit naming this prefix's txbufd;
#     2. builds tests/install/consumer/ against that tree twice: with CMake
#        (find_package(txbuf); a program on the shared library and one on the
#        static one) and with `CXX $(pkg-config --cflags --libs txbuf)`;
#     3. runs each of the three against the installed txbufd on a fresh export
#        (a pipelined batch of WRITEs, then LOOKUP + GETATTR + READ) and checks
#        the file the server wrote; the server must exit 0 on SIGTERM;
#     4. configures (builds nothing) tests/install/subproject/, a parent
#        project that add_subdirectory()s txbuf with GoogleTest and Google
#        Benchmark made unfindable: no txbuf tests in the parent, its build
#        type unchanged.
#   install_test.sh deb BUILD_DIR
#     cpack -G DEB into a temporary directory; the package lists the
#     binaries, the library, the headers and the package files, the service
#     files (/etc/txbuf/txbufd.conf a conffile, the unit running
#     /usr/bin/txbufd, the man pages, a postinst making the user txbuf),
#     and has Depends from dpkg-shlibdeps.
#
# BUILD_DIR must be fully built. Exits non-zero with a "FAIL:" line on any
# failure.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
mode=${1:?usage: install_test.sh consumer BUILD_DIR CXX | deb BUILD_DIR}
build=$(cd "${2:?BUILD_DIR}" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/txbuf-install-test.XXXXXX")
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
  echo "install_test: FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }

# The expected contents of the file the consumer writes (consumer.cc).
check_written_file() {
  python3 - "$1" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
want = bytes((i * 131 + 7) % 251 for i in range(16 * 64 * 1024))
if data != want:
    sys.exit(f"{sys.argv[1]}: {len(data)} bytes, not the {len(want)} written")
EOF
}

# run_consumer NAME PROGRAM: the program against the installed txbufd on a
# fresh export.
run_consumer() {
  local name=$1 program=$2
  local export_dir=$tmp/export-$name fifo=$tmp/txbufd-$name.out line=""
  mkdir "$export_dir"
  mkfifo "$fifo"
  "$prefix/bin/txbufd" --export "$export_dir" --listen 127.0.0.1:0 >"$fifo" &
  server_pid=$!
  exec 3<"$fifo"
  while IFS= read -r -t 60 -u 3 line; do
    [[ $line == "listening on "* ]] && break
  done
  [[ $line == "listening on "* ]] ||
    fail "$name: the installed txbufd did not print 'listening on' within 60 s"
  local address=${line#listening on }
  local output
  output=$("$program" "${address%:*}" "${address##*:}") ||
    fail "$name: the consumer failed (exit $?): $output"
  echo "$name: $output"
  [[ $output == "consumer: ok:"* ]] || fail "$name: unexpected output: $output"
  check_written_file "$export_dir/consumer.bin" || fail "$name: the exported file"
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=""
  cat <&3 >/dev/null
  exec 3<&-
  [ "$rc" -eq 0 ] || fail "$name: txbufd exited with $rc on SIGTERM"
}

consumer_mode() {
  local cxx=${1:?CXX}
  prefix=$tmp/prefix
  step "cmake --install $build --prefix $prefix"
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; fail "cmake --install"; }

  step "the install tree"
  local pc
  pc=$(find "$prefix" -path '*/pkgconfig/txbuf.pc')
  [ -n "$pc" ] || fail "no lib*/pkgconfig/txbuf.pc"
  local libdir
  libdir=$(dirname "$(dirname "$pc")")
  for f in bin/txbufd bin/txbuf bin/txbuf-bench bin/txbuf-raw-server; do
    [ -x "$prefix/$f" ] || fail "$f not installed"
  done
  [ -f "$libdir/libtxbuf_client.a" ] || fail "libtxbuf_client.a not installed"
  # The service files: the unit names this prefix's txbufd and configuration.
  for f in etc/txbuf/txbufd.conf lib/sysusers.d/txbuf.conf \
           share/man/man1/txbuf.1 share/man/man1/txbuf-bench.1 \
           share/man/man5/txbufd.conf.5 share/man/man8/txbufd.8 \
           share/doc/txbuf/examples/txbufd.service.d/squash.conf; do
    [ -f "$prefix/$f" ] || fail "$f not installed"
  done
  grep -qx "ExecStart=$prefix/bin/txbufd --config $prefix/etc/txbuf/txbufd.conf" \
    "$prefix/lib/systemd/system/txbufd.service" ||
    fail "lib/systemd/system/txbufd.service: no ExecStart for $prefix"
  # What was installed is in the manifest (so that it can be removed).
  grep -qx "$prefix/lib/systemd/system/txbufd.service" \
    "$build/install_manifest.txt" ||
    fail "install_manifest.txt lacks lib/systemd/system/txbufd.service"
  [ -f "$libdir/cmake/txbuf/txbufConfig.cmake" ] ||
    fail "cmake/txbuf/txbufConfig.cmake not installed"
  local soname
  soname=$(objdump -p "$libdir/libtxbuf_client.so" | awk '$1 == "SONAME" { print $2 }')
  [[ $soname == libtxbuf_client.so.[0-9]* ]] ||
    fail "libtxbuf_client.so: SONAME '$soname'"
  [ -f "$libdir/$soname" ] || fail "$soname (the SONAME) not installed"
  echo "libtxbuf_client.so: SONAME $soname"
  # Each txbuf header an installed header includes must be installed: a user
  # has only include/txbuf (Abseil's and protobuf's come from Debian).
  local inc=$prefix/include/txbuf h dep n=0
  while IFS= read -r h; do
    n=$((n + 1))
    while IFS= read -r dep; do
      [[ $dep == absl/* ]] && continue
      [ -f "$inc/$dep" ] || fail "${h#"$inc"/} includes \"$dep\", which is not installed"
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$h")
  done < <(find "$inc" -name '*.h')
  [ "$n" -gt 0 ] || fail "no headers under include/txbuf"
  echo "$n headers, every txbuf include installed"

  step "consumer: find_package(txbuf)"
  cmake -S "$src/tests/install/consumer" -B "$tmp/consumer-cmake" -G Ninja \
        -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
        >"$tmp/consumer-cmake.log" ||
    { cat "$tmp/consumer-cmake.log"; fail "configuring the consumer"; }
  grep -q "^txbuf_DIR:PATH=$prefix/" "$tmp/consumer-cmake/CMakeCache.txt" ||
    fail "find_package(txbuf) found $(grep '^txbuf_DIR' "$tmp/consumer-cmake/CMakeCache.txt")"
  cmake --build "$tmp/consumer-cmake" -j1 >"$tmp/consumer-build.log" ||
    { cat "$tmp/consumer-build.log"; fail "building the consumer (find_package)"; }
  local needed
  needed=$(objdump -p "$tmp/consumer-cmake/consumer_shared")
  [[ $needed =~ NEEDED\ +$soname ]] || fail "consumer_shared does not use $soname"
  needed=$(objdump -p "$tmp/consumer-cmake/consumer_static")
  [[ ! $needed =~ NEEDED\ +libtxbuf_client ]] ||
    fail "consumer_static uses the shared library"

  step "consumer: pkg-config txbuf"
  local flags
  flags=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs txbuf) ||
    fail "pkg-config --cflags --libs txbuf"
  echo "pkg-config --cflags --libs txbuf: $flags"
  local pc_libdir
  pc_libdir=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --variable=libdir txbuf)
  [ "$(realpath "$pc_libdir")" = "$(realpath "$libdir")" ] ||
    fail "txbuf.pc's libdir is $pc_libdir, not $libdir"
  # shellcheck disable=SC2086  # the flags are words
  "$cxx" -std=c++20 -o "$tmp/consumer_pc" "$src/tests/install/consumer/consumer.cc" \
      $flags 2>"$tmp/consumer-pc.log" ||
    { cat "$tmp/consumer-pc.log"; fail "building the consumer (pkg-config)"; }

  step "consumers against the installed txbufd"
  run_consumer cmake-shared "$tmp/consumer-cmake/consumer_shared"
  run_consumer cmake-static "$tmp/consumer-cmake/consumer_static"
  LD_LIBRARY_PATH=$libdir run_consumer pkg-config "$tmp/consumer_pc"

  step "add_subdirectory(txbuf) in a parent project"
  cmake -S "$src/tests/install/subproject" -B "$tmp/subproject" -G Ninja \
        -DCMAKE_CXX_COMPILER="$cxx" -DTXBUF_SOURCE_DIR="$src" \
        -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON \
        -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON >"$tmp/subproject.log" 2>&1 ||
    { cat "$tmp/subproject.log"; fail "configuring the parent project"; }
  local tests
  tests=$(cd "$tmp/subproject" && ctest -N | sed -n 's/^Total Tests: //p')
  [ "$tests" = 0 ] || fail "the parent project has $tests tests, not 0"
  echo "parent project: configured without GoogleTest and Google Benchmark, 0 tests"
  echo "install_test: consumer: all passed"
}

deb_mode() {
  step "cpack -G DEB"
  (cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg") \
    >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
  local deb
  deb=$(find "$tmp/pkg" -maxdepth 1 -name 'txbuf_*.deb')
  [ -n "$deb" ] || { cat "$tmp/cpack.log"; fail "no txbuf_*.deb"; }
  echo "$(basename "$deb"): $(stat -c %s "$deb") bytes"
  dpkg-deb -c "$deb" | awk '{ print $6 }' >"$tmp/contents"
  for f in ./usr/bin/txbufd ./usr/bin/txbuf ./usr/bin/txbuf-bench \
           ./usr/include/txbuf/client/client.h \
           ./usr/include/txbuf/proto/txbuf.pb.h; do
    grep -qx "$f" "$tmp/contents" || fail "$f not in the package"
  done
  for f in 'libtxbuf_client\.so\.[0-9.]*' 'libtxbuf_client\.a' \
           'pkgconfig/txbuf\.pc' 'cmake/txbuf/txbufConfig\.cmake'; do
    grep -q "^\./usr/lib/.*$f\$" "$tmp/contents" || fail "$f not in the package"
  done
  for f in ./etc/txbuf/txbufd.conf ./usr/lib/systemd/system/txbufd.service \
           ./usr/lib/sysusers.d/txbuf.conf ./usr/share/man/man8/txbufd.8 \
           ./usr/share/man/man5/txbufd.conf.5 ./usr/share/man/man1/txbuf.1 \
           ./usr/share/man/man1/txbuf-bench.1 \
           ./usr/share/doc/txbuf/examples/txbufd.service.d/squash.conf; do
    grep -qx "$f" "$tmp/contents" || fail "$f not in the package"
  done
  dpkg-deb --fsys-tarfile "$deb" |
    tar -xOf - ./usr/lib/systemd/system/txbufd.service >"$tmp/unit"
  grep -qx 'ExecStart=/usr/bin/txbufd --config /etc/txbuf/txbufd.conf' \
    "$tmp/unit" || fail "txbufd.service in the package: $(grep Exec "$tmp/unit")"
  dpkg-deb -e "$deb" "$tmp/control"
  grep -qx /etc/txbuf/txbufd.conf "$tmp/control/conffiles" ||
    fail "/etc/txbuf/txbufd.conf is not a conffile"
  grep -q systemd-sysusers "$tmp/control/postinst" || fail "no postinst making the user"
  local depends
  depends=$(dpkg-deb -f "$deb" Depends)
  [[ $depends == *libc6* ]] || fail "Depends '$depends' (dpkg-shlibdeps?)"
  echo "Depends: $depends"
  echo "install_test: deb: all passed"
}

case "$mode" in
  consumer) consumer_mode "${3:-}" ;;
  deb) deb_mode ;;
  *) fail "unknown mode '$mode'" ;;
esac
