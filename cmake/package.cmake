# package.cmake - a Debian package with CPack (`make deb`, or `cpack -G DEB`
# in a build configured with -DCMAKE_INSTALL_PREFIX=/usr): what
# `cmake --install` lays down, under /usr, with /etc/errgate/errgate.yaml and
# /etc/logrotate.d/errgate as conffiles. The maintainer scripts
# (packaging/debian/) create the errgate user and reload systemd; the service
# is not enabled, since the configuration must be written first.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME errgate)
set(CPACK_PACKAGE_VENDOR errgate)
set(CPACK_PACKAGE_CONTACT "errgate maintainers <errgate@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "An API gateway that gives every HTTP API one error contract: errors in one dialect \
(RFC 9457 problem and five others), request ids, rate limits, API keys, retries; \
with liberrgate, its client library and the errgate command.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Debian 12's names of the libraries the binary links (listed, not found by
# dpkg-shlibdeps, so that the package builds the same without dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libjansson4, libyaml-0-2, libuv1, libssl3, libsqlite3-0, libhiredis0.14, libcurl4, \
libpcre2-8-0, zlib1g, libsystemd0, libpq5, libnghttp2-14, systemd | systemd-standalone-sysusers")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "logrotate, redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
