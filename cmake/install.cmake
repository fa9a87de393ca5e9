# What `cmake --install` puts where, the installed client library, the CMake
# package (find_package(txbuf) gives txbuf::client), the pkg-config file
# (txbuf.pc) and CPack (`cpack -G DEB`). Included from the top-level
# CMakeLists.txt when TXBUF_INSTALL is on.
#
#   bin/                 txbufd, txbuf; txbuf-bench and the peer servers it
#                        starts (txbuf-raw-server, txbuf-grpc-server if built)
#   lib/                 libtxbuf_client.a, libtxbuf_client.so.<SOVERSION>
#   lib/cmake/txbuf/     txbufConfig.cmake, txbufConfigVersion.cmake,
#                        txbufTargets*.cmake
#   lib/pkgconfig/       txbuf.pc
#   include/txbuf/       the public headers: client/{client,compound,status}.h,
#                        common/{deleter,engine_kind,histogram,memory_stats}.h,
#                        proto/txbuf.pb.h (generated), proto/status_map.h;
#                        users add
#                        include/txbuf to their include path and write
#                        #include "client/client.h"
#   share/txbuf/proto/   txbuf.proto
#   and the service files (below: the systemd unit, the example
#   configuration, the man pages)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# --- The installed client library --------------------------------------------
# client/ with everything it needs from common/ and proto/ (the generated
# code) inside, so that a user links it and Debian's libraries
# (Abseil, protobuf; liburing and libcrypto too when static), nothing of
# txbuf's build tree. Made of the position-independent objects of
# txbuf_pic_objects(): the internal libraries txbufd and the tests link stay
# as they were.
#
# The ABI is not stable before 1.0: the SONAME carries major.minor while the
# major version is 0 (libtxbuf_client.so.0.1), the major version after.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(TXBUF_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(TXBUF_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()
set(_txbuf_client_objects
  $<TARGET_OBJECTS:txbuf_client_pic>
  $<TARGET_OBJECTS:txbuf_common_pic>
  $<TARGET_OBJECTS:txbuf_proto_pic>
  $<TARGET_OBJECTS:txbuf_protocol_pic>
)
foreach(kind IN ITEMS shared static)
  set(lib txbuf_client_${kind})
  string(TOUPPER ${kind} type)
  add_library(${lib} ${type} ${_txbuf_client_objects})
  set_target_properties(${lib} PROPERTIES
    OUTPUT_NAME txbuf_client
    EXPORT_NAME client_${kind}
    # Not beside the internal client/libtxbuf_client.a.
    ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  target_include_directories(${lib} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/proto/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/txbuf>)
  target_compile_features(${lib} PUBLIC cxx_std_20)
  # PUBLIC: what the public headers use. PRIVATE: a static user links them
  # too (liburing by name: PkgConfig::URING is this build's own target).
  target_link_libraries(${lib}
    PUBLIC
      protobuf::libprotobuf
      absl::status absl::statusor absl::strings absl::str_format absl::time
      absl::any_invocable absl::span absl::synchronization absl::cord
      absl::flat_hash_map absl::flat_hash_set absl::base
    PRIVATE
      $<BUILD_INTERFACE:PkgConfig::URING> $<INSTALL_INTERFACE:uring>
      OpenSSL::Crypto Threads::Threads)
endforeach()
set_target_properties(txbuf_client_shared PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${TXBUF_SOVERSION})
# Every symbol resolved at link time: a missing object fails the build here,
# not in a user's program.
target_link_options(txbuf_client_shared PRIVATE -Wl,--no-undefined)

# --- Files ---------------------------------------------------------------------
install(TARGETS txbufd txbuf RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TXBUF_BUILD_BENCH)
  # txbuf-bench finds txbufd and the peer servers beside itself.
  install(TARGETS txbuf-bench txbuf-raw-server
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  if(TARGET txbuf-grpc-server)
    install(TARGETS txbuf-grpc-server RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endif()
install(TARGETS txbuf_client_shared txbuf_client_static
        EXPORT txbufTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# `cmake --install --strip` (and CPack) strip the executables and the shared
# library; the static one loses its debug sections too (like dh_strip).
install(CODE "
  if(CMAKE_INSTALL_DO_STRIP)
    execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libtxbuf_client.a\"
      COMMAND_ERROR_IS_FATAL ANY)
  endif()")
# The public headers: those client/client.h and client/compound.h include,
# and what they include (tests/install/install_test.sh checks that every
# header installed here finds each txbuf header it includes).
install(FILES client/client.h client/compound.h client/status.h
              client/write_lease.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/txbuf/client)
install(FILES common/deleter.h common/engine_kind.h common/histogram.h
              common/counter_set.h common/memory_stats.h common/owned_bytes.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/txbuf/common)
install(FILES ${PROJECT_BINARY_DIR}/proto/include/proto/txbuf.pb.h
              proto/status_map.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/txbuf/proto)
install(FILES proto/txbuf.proto DESTINATION ${CMAKE_INSTALL_DATADIR}/txbuf/proto)

# --- CMake package -------------------------------------------------------------
set(_txbuf_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/txbuf)
install(EXPORT txbufTargets NAMESPACE txbuf:: DESTINATION ${_txbuf_cmake_dir})
configure_package_config_file(cmake/txbufConfig.cmake.in
  ${PROJECT_BINARY_DIR}/txbufConfig.cmake
  INSTALL_DESTINATION ${_txbuf_cmake_dir})
# 0.x: a minor version may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/txbufConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/txbufConfig.cmake
              ${PROJECT_BINARY_DIR}/txbufConfigVersion.cmake
        DESTINATION ${_txbuf_cmake_dir})

# --- pkg-config ----------------------------------------------------------------
# Paths relative to the .pc file, so that `cmake --install --prefix P` works
# for any P.
file(RELATIVE_PATH TXBUF_PC_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" TXBUF_PC_PREFIX "${TXBUF_PC_PREFIX}")
configure_file(cmake/txbuf.pc.in ${PROJECT_BINARY_DIR}/txbuf.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/txbuf.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- Running txbufd as a service (dist/) ----------------------------------------
#   lib/systemd/system/txbufd.service   the unit (TXBUF_SYSTEMD_UNIT_DIR)
#   lib/sysusers.d/txbuf.conf           its system user, txbuf
#   etc/txbuf/txbufd.conf               the commented example configuration:
#                                       /etc/txbuf/ when the prefix is /usr
#                                       (the .deb), PREFIX/etc/txbuf/ otherwise
#   share/man/man{1,5,8}/               txbuf(1), txbuf-bench(1),
#                                       txbufd.conf(5), txbufd(8)
#   share/doc/txbuf/examples/txbufd.service.d/squash.conf
#                                       the drop-in an operator copies to
#                                       /etc/systemd/system/txbufd.service.d/
#                                       for squash-uid/squash-gid (not
#                                       active where it is installed)
# The unit names the installed binary and configuration file, so it is
# written at install time, when the prefix is known (cpack installs with
# its own): configured into the build tree, then installed with
# file(INSTALL), which lists it in install_manifest.txt. An existing
# configuration file is never overwritten.
set(TXBUF_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
    "Where the systemd unit goes, relative to the prefix")
string(TIMESTAMP TXBUF_MAN_DATE "%Y-%m-%d" UTC)  # honours SOURCE_DATE_EPOCH
set(TXBUF_MAN_PAGES txbuf.1 txbuf-bench.1 txbufd.conf.5 txbufd.8)
foreach(page IN LISTS TXBUF_MAN_PAGES)
  configure_file(dist/man/${page}.in ${PROJECT_BINARY_DIR}/man/${page} @ONLY)
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${PROJECT_BINARY_DIR}/man/${page}
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
install(FILES dist/sysusers.d/txbuf.conf DESTINATION lib/sysusers.d)
install(FILES dist/txbufd.service.d/squash.conf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/txbufd.service.d)
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  if(prefix STREQUAL \"/usr\")
    set(etc /etc)
  else()
    set(etc \"\${prefix}/etc\")
  endif()
  set(TXBUF_BINDIR \"\${prefix}/${CMAKE_INSTALL_BINDIR}\")
  set(TXBUF_CONFIG \"\${etc}/txbuf/txbufd.conf\")
  # One per destination: cpack and cmake --install may run at once.
  string(MD5 dest \"\$ENV{DESTDIR}\${prefix}\")
  set(unit \"${PROJECT_BINARY_DIR}/dist/installed/\${dest}/txbufd.service\")
  configure_file(\"${PROJECT_SOURCE_DIR}/dist/systemd/txbufd.service.in\"
                 \"\${unit}\" @ONLY)
  # (file(INSTALL) adds DESTDIR itself, and records the file.)
  file(INSTALL \"\${unit}\"
       DESTINATION \"\${prefix}/${TXBUF_SYSTEMD_UNIT_DIR}\")
  if(EXISTS \"\$ENV{DESTDIR}\${TXBUF_CONFIG}\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}\${TXBUF_CONFIG}\")
  else()
    # (file(INSTALL) adds DESTDIR itself.)
    file(INSTALL \"${PROJECT_SOURCE_DIR}/dist/txbufd.conf\"
         DESTINATION \"\${etc}/txbuf\")
  endif()")

# --- CPack: cpack -G DEB -------------------------------------------------------
set(CPACK_PACKAGE_NAME txbuf)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "zero-copy network file server (txbufd), client library and tools")
set(TXBUF_PACKAGE_CONTACT "txbuf developers <txbuf@localhost>" CACHE STRING
    "Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT ${TXBUF_PACKAGE_CONTACT})
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends: from the binaries' and the library's shared libraries
# (dpkg-shlibdeps, package dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The system user (postinst), the unit known to systemd; the configuration
# file is a conffile (an operator's edits survive upgrades).
configure_file(dist/deb/conffiles.in ${PROJECT_BINARY_DIR}/deb/conffiles @ONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/deb/postinst ${PROJECT_SOURCE_DIR}/dist/deb/postrm
    ${PROJECT_BINARY_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
