# Install rules: the shared library, the public headers, the CMake package
# (find_package(Tessera) -> Tessera::tessera) and tessera.pc. Included by the top-level
# CMakeLists.txt after every target exists. tessera_static is for tests and is not installed.
include(CMakePackageConfigHelpers)

set(TSR_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Tessera CACHE STRING
    "Where the CMake package files are installed, relative to the prefix")
mark_as_advanced(TSR_CMAKE_INSTALL_DIR)

# Library: libtessera.so.<version>, the libtessera.so.<soversion> link for the loader
# (Runtime) and the libtessera.so link for the linker (Development).
install(TARGETS tessera EXPORT TesseraTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime
          NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# Headers: the umbrella, include/tessera/*.h, the generated tessera/config.h, and
# tessera/cuda.h, which lives with the CUDA device (it includes the CUDA runtime's
# header; programs that write no CUDA code never include it).
install(FILES ${PROJECT_SOURCE_DIR}/include/tessera.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tessera/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tessera COMPONENT Development
  FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/tessera/config.h
              ${PROJECT_SOURCE_DIR}/devices/cuda/include/tessera/cuda.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tessera COMPONENT Development)

# CMake package. SOVERSION stays 0 through the 0.x series, hence SameMajorVersion.
install(EXPORT TesseraTargets NAMESPACE Tessera:: FILE TesseraTargets.cmake
  DESTINATION ${TSR_CMAKE_INSTALL_DIR} COMPONENT Development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/TesseraConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/TesseraConfig.cmake
  INSTALL_DESTINATION ${TSR_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/TesseraConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/TesseraConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/TesseraConfigVersion.cmake
  DESTINATION ${TSR_CMAKE_INSTALL_DIR} COMPONENT Development)

# pkg-config. Everything but the prefix is filled in now; the prefix is filled in at install
# time, so that it is the one actually installed to (`cmake --install build --prefix DIR`).
foreach(_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}}")
    set(TSR_PC_${_kind} "${CMAKE_INSTALL_${_kind}}")
  else()
    set(TSR_PC_${_kind} "\${prefix}/${CMAKE_INSTALL_${_kind}}")
  endif()
endforeach()
set(TSR_PC_PREFIX "@TSR_PC_PREFIX@")
configure_file(${CMAKE_CURRENT_LIST_DIR}/tessera.pc.in
  ${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc.stage @ONLY)
install(CODE "set(TSR_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc.stage\"
                 \"${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc\" @ONLY)" COMPONENT Development)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/tessera.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT Development)

# Installed executables (tessera, tessera-bench) find libtessera relative to themselves.
# CMAKE_INSTALL_RPATH would come too late here (targets copy it when created), so set
# INSTALL_RPATH on every executable linking tessera that has none.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(_tsr_rpath "${CMAKE_INSTALL_FULL_LIBDIR}")
else()
  file(RELATIVE_PATH _tsr_rel /p/${CMAKE_INSTALL_BINDIR} /p/${CMAKE_INSTALL_LIBDIR})
  set(_tsr_rpath "$ORIGIN/${_tsr_rel}")
endif()
function(tsr_set_exe_install_rpath dir rpath)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    get_target_property(have ${t} INSTALL_RPATH)
    get_target_property(libs ${t} LINK_LIBRARIES)
    if(type STREQUAL "EXECUTABLE" AND NOT have AND ("tessera" IN_LIST libs OR
                                                    "Tessera::tessera" IN_LIST libs))
      set_target_properties(${t} PROPERTIES INSTALL_RPATH "${rpath}")
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    tsr_set_exe_install_rpath(${sub} "${rpath}")
  endforeach()
endfunction()
tsr_set_exe_install_rpath(${PROJECT_SOURCE_DIR} "${_tsr_rpath}")

# The install test (tests/install). tests/CMakeLists.txt may add it with
# add_subdirectory(install); otherwise it is added here, once.
if(TESSERA_BUILD_TESTS)
  get_property(_tsr_install_test GLOBAL PROPERTY TSR_INSTALL_TEST_ADDED)
  if(NOT _tsr_install_test)
    add_subdirectory(${PROJECT_SOURCE_DIR}/tests/install ${PROJECT_BINARY_DIR}/tests/install)
  endif()
endif()
