# Builds and runs tests/consumer against vqlib the way a user would, failing on the first error.
# ctest runs it (see tests/CMakeLists.txt):
#   cmake -DMODE=install|build-tree|subdirectory -DVQLIB_SOURCE_DIR=<src> -DVQLIB_BINARY_DIR=<build>
#         -DWORK_DIR=<dir> [-DINSTALL_PREFIX=<dir>] [-DGENERATOR=<g>] [-DMAKE_PROGRAM=<p>]
#         [-DCXX_COMPILER=<c++>] [-DCXX_COMPILER_LAUNCHER=<ccache>] [-DBUILD_TYPE=<cfg>]
#         [-DBUILD_TYPE_FLAGS=<flags>] -P vqlibConsumerCheck.cmake
#   BUILD_TYPE_FLAGS replaces the build type's compiler flags (CMAKE_CXX_FLAGS_<CFG>): what is
#   checked is the package, not the code, so the check may build without optimization.
#   install:      installs <build> into INSTALL_PREFIX, then find_package(vqlib) from there
#   build-tree:   find_package(vqlib) from the build tree's export()
#   subdirectory: add_subdirectory(<src>) into the consumer, where vqlib is not top-level
cmake_minimum_required(VERSION 3.21)

foreach(required IN ITEMS MODE VQLIB_SOURCE_DIR VQLIB_BINARY_DIR WORK_DIR)
    if("${${required}}" STREQUAL "")
        message(FATAL_ERROR "vqlibConsumerCheck: -D${required}=... is required")
    endif()
endforeach()

set(configure_args -S "${VQLIB_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
foreach(pass IN ITEMS GENERATOR MAKE_PROGRAM CXX_COMPILER CXX_COMPILER_LAUNCHER BUILD_TYPE)
    if(NOT "${${pass}}" STREQUAL "")
        if(pass STREQUAL "GENERATOR")
            list(APPEND configure_args -G "${GENERATOR}")
        else()
            list(APPEND configure_args "-DCMAKE_${pass}=${${pass}}")
        endif()
    endif()
endforeach()
set(config_args "")
set(ctest_config_args "")
if(NOT "${BUILD_TYPE}" STREQUAL "")
    set(config_args --config "${BUILD_TYPE}")
    set(ctest_config_args -C "${BUILD_TYPE}")
    if(DEFINED BUILD_TYPE_FLAGS)
        string(TOUPPER "${BUILD_TYPE}" build_type_upper)
        list(APPEND configure_args "-DCMAKE_CXX_FLAGS_${build_type_upper}=${BUILD_TYPE_FLAGS}")
    endif()
endif()

if(MODE STREQUAL "install")
    if("${INSTALL_PREFIX}" STREQUAL "")
        message(FATAL_ERROR "vqlibConsumerCheck: MODE=install needs -DINSTALL_PREFIX=...")
    endif()
    file(REMOVE_RECURSE "${INSTALL_PREFIX}")
    execute_process(
        COMMAND "${CMAKE_COMMAND}" --install "${VQLIB_BINARY_DIR}" --prefix "${INSTALL_PREFIX}"
                ${config_args}
        COMMAND_ERROR_IS_FATAL ANY)
    list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${INSTALL_PREFIX}")
    set(expected_vqlib_dir "${INSTALL_PREFIX}")
elseif(MODE STREQUAL "build-tree")
    list(APPEND configure_args "-Dvqlib_DIR=${VQLIB_BINARY_DIR}")
    set(expected_vqlib_dir "${VQLIB_BINARY_DIR}")
elseif(MODE STREQUAL "subdirectory")
    list(APPEND configure_args "-DVQLIB_SOURCE_DIR=${VQLIB_SOURCE_DIR}")
else()
    message(FATAL_ERROR
            "vqlibConsumerCheck: MODE=${MODE}: expected install, build-tree or subdirectory")
endif()

file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" ${configure_args} COMMAND_ERROR_IS_FATAL ANY)

if(DEFINED expected_vqlib_dir)
    file(STRINGS "${WORK_DIR}/CMakeCache.txt" found_vqlib_dir REGEX "^vqlib_DIR:")
    string(REGEX REPLACE "^vqlib_DIR:[A-Z]+=" "" found_vqlib_dir "${found_vqlib_dir}")
    cmake_path(IS_PREFIX expected_vqlib_dir "${found_vqlib_dir}" NORMALIZE found_in_expected)
    if(NOT found_in_expected)
        message(FATAL_ERROR "vqlibConsumerCheck: the consumer found vqlib in '${found_vqlib_dir}': "
                            "expected a directory under '${expected_vqlib_dir}'")
    endif()
else()
    # Not top-level: vqlib must not have added its tests, benchmarks or examples.
    foreach(dir IN ITEMS tests benchmarks examples)
        if(EXISTS "${WORK_DIR}/vqlib-build/${dir}")
            message(FATAL_ERROR "vqlibConsumerCheck: vqlib added its ${dir} although it is not the "
                                "top-level project")
        endif()
    endforeach()
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}" ${config_args}
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_CTEST_COMMAND}" --test-dir "${WORK_DIR}" --output-on-failure
                        ${ctest_config_args}
                COMMAND_ERROR_IS_FATAL ANY)
