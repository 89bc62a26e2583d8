# install_time.cmake - runs inside `cmake --install`, where
# CMAKE_INSTALL_PREFIX is this install's prefix (--prefix P, or CPack's
# /usr), and writes the files that name it: errgate.pc, errgate-client.pc
# and errgate.service. EG_* come from cmake/install.cmake (configure time).
# file(INSTALL) adds DESTDIR, as every other install rule does.

# a directory of GNUInstallDirs as this prefix has it: relative ones under
# the prefix (for pkg-config: under ${prefix}, so the .pc reads as usual)
function(eg_dir var dir pc_var)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
    set(${pc_var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
    set(${pc_var} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

set(EG_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
eg_dir(eg_libdir "${EG_LIBDIR}" EG_PC_LIBDIR)
eg_dir(eg_includedir "${EG_INCLUDEDIR}" EG_PC_INCLUDEDIR)
eg_dir(EG_BINDIR "${EG_BINDIR}" eg_unused)
# /usr's configuration lives in /etc (as GNUInstallDirs has it)
if(IS_ABSOLUTE "${EG_SYSCONFDIR}")
  set(eg_sysconfdir "${EG_SYSCONFDIR}")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(eg_sysconfdir "/etc")
else()
  set(eg_sysconfdir "${CMAKE_INSTALL_PREFIX}/${EG_SYSCONFDIR}")
endif()

# a directory per destination: installs into two prefixes may run at once
string(MD5 eg_dest "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(eg_out "${EG_BIN}/install-time/${eg_dest}")
configure_file("${EG_SRC}/cmake/errgate.pc.in" "${eg_out}/errgate.pc" @ONLY)
configure_file("${EG_SRC}/cmake/errgate-client.pc.in" "${eg_out}/errgate-client.pc" @ONLY)
configure_file("${EG_SRC}/packaging/systemd/errgate.service.in" "${eg_out}/errgate.service" @ONLY)
file(INSTALL "${eg_out}/errgate.pc" "${eg_out}/errgate-client.pc" DESTINATION "${eg_libdir}/pkgconfig")
file(INSTALL "${eg_out}/errgate.service" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
file(INSTALL "${EG_SRC}/packaging/logrotate/errgate" DESTINATION "${eg_sysconfdir}/logrotate.d")
# the configuration errgate.service runs: the example, unless there is one
if(NOT EXISTS "$ENV{DESTDIR}${eg_sysconfdir}/errgate/errgate.yaml")
  file(INSTALL "${EG_SRC}/packaging/errgate.yaml" DESTINATION "${eg_sysconfdir}/errgate")
endif()
