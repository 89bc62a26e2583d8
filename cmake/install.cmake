# install.cmake - what `cmake --install build [--prefix P]` lays down:
#   bin/errgate; lib/liberrgate.{a,so}, liberrgate-client.a; include/errgate/;
#   lib/pkgconfig/errgate.pc, errgate-client.pc; lib/cmake/errgate/ (find_package);
#   share/man/man1/errgate*.1; lib/systemd/system/errgate.service,
#   lib/sysusers.d/errgate.conf, etc/logrotate.d/errgate (/etc for prefix /usr);
#   share/doc/errgate/examples/errgate.yaml, and etc/errgate/errgate.yaml
#   (from the same example) when there is none: an operator's is never replaced.
# The prefix is known for sure only when the install runs (--prefix overrides
# what configure saw), so the files that name it (the .pc files, the unit's
# ExecStart) are written then, by cmake/install_time.cmake; the CMake package
# is relocatable. Man pages are generated from docs/man/*.md (scripts/man.py).
# Installing (and cpack) never builds: the Makefile's install and deb targets
# build first, and a test that packages the build under test must not relink
# the binary other tests are running.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
include(CMakePackageConfigHelpers)

# the headers of an installed errgate::errgate_shared are the installed ones
target_include_directories(errgate_shared PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

install(TARGETS errgate errgate_shared errgate_client EXPORT errgateTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS errgate_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/errgate DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(EG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/errgate)
install(EXPORT errgateTargets NAMESPACE errgate:: DESTINATION ${EG_CMAKE_DIR})
configure_package_config_file(cmake/errgateConfig.cmake.in ${CMAKE_BINARY_DIR}/errgateConfig.cmake
                              INSTALL_DESTINATION ${EG_CMAKE_DIR})
# 0.x: a new minor version may break
write_basic_package_version_file(${CMAKE_BINARY_DIR}/errgateConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/errgateConfig.cmake ${CMAKE_BINARY_DIR}/errgateConfigVersion.cmake
        DESTINATION ${EG_CMAKE_DIR})

# man pages, one per command, from one Markdown source each
find_package(Python3 COMPONENTS Interpreter)
file(GLOB EG_MAN_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/*.md)
set(EG_MAN_PAGES "")
if(Python3_Interpreter_FOUND)
  foreach(src ${EG_MAN_SOURCES})
    get_filename_component(page ${src} NAME_WLE) # errgate-serve.1
    set(out ${CMAKE_BINARY_DIR}/man/${page})
    add_custom_command(OUTPUT ${out}
                       COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
                       COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/scripts/man.py ${src} ${out}
                               ${PROJECT_VERSION}
                       DEPENDS ${src} ${CMAKE_SOURCE_DIR}/scripts/man.py
                       COMMENT "man page ${page}" VERBATIM)
    list(APPEND EG_MAN_PAGES ${out})
  endforeach()
  add_custom_target(man ALL DEPENDS ${EG_MAN_PAGES})
  install(FILES ${EG_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(WARNING "python3 not found: the man pages are not built (run scripts/deps.sh)")
endif()

install(FILES packaging/systemd/errgate.sysusers DESTINATION lib/sysusers.d RENAME errgate.conf)
install(FILES packaging/errgate.yaml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(CODE "set(EG_SRC \"${CMAKE_SOURCE_DIR}\")
set(EG_BIN \"${CMAKE_BINARY_DIR}\")
set(EG_VERSION \"${PROJECT_VERSION}\")
set(EG_DESCRIPTION \"${PROJECT_DESCRIPTION}\")
set(EG_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
set(EG_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
set(EG_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(EG_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")")
install(SCRIPT cmake/install_time.cmake)

include(cmake/package.cmake)
