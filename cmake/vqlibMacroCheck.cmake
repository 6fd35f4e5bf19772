# Fails when including vqlib's public headers leaves a macro defined that is not part of vqlib's
# interface. ctest runs it (tests/CMakeLists.txt) on a generated translation unit that includes
# every public header:
#   cmake -DCXX=<c++> -DSOURCE=<all_headers.cpp> -DINCLUDES=<dir;dir;...> -P vqlibMacroCheck.cmake
# The preprocessor's list of macros (-E -dM) after all headers is compared with the interface:
# VQLIB_CHECK, VQLIB_CHECK_RANGE (core/error.hpp) and the VQLIB_VERSION_* of version.hpp.
cmake_minimum_required(VERSION 3.21)

foreach(required IN ITEMS CXX SOURCE INCLUDES)
    if("${${required}}" STREQUAL "")
        message(FATAL_ERROR "vqlibMacroCheck: -D${required}=... is required")
    endif()
endforeach()

set(include_args "")
list(REMOVE_DUPLICATES INCLUDES)
foreach(dir IN LISTS INCLUDES)
    # The compiler's own system directory stays where it is (as -I it would break #include_next).
    if(NOT "${dir}" STREQUAL "" AND NOT dir MATCHES "^/usr(/local)?/include/?$")
        list(APPEND include_args "-I${dir}")
    endif()
endforeach()
execute_process(
    COMMAND "${CXX}" -std=c++20 -E -dM -x c++ "${SOURCE}" ${include_args}
    OUTPUT_VARIABLE defines
    ERROR_VARIABLE errors
    RESULT_VARIABLE result)
if(NOT result EQUAL 0)
    message(FATAL_ERROR "vqlibMacroCheck: preprocessing ${SOURCE} failed:\n${errors}")
endif()

set(interface VQLIB_CHECK VQLIB_CHECK_RANGE VQLIB_VERSION_MAJOR VQLIB_VERSION_MINOR
              VQLIB_VERSION_PATCH VQLIB_VERSION_STRING VQLIB_VERSION_STRING_DETAIL
              VQLIB_VERSION_STRING_EXPAND)
string(REGEX MATCHALL "#define VQLIB_[A-Za-z0-9_]*" found "${defines}")
set(leaked "")
set(seen "")
foreach(entry IN LISTS found)
    string(REPLACE "#define " "" name "${entry}")
    list(APPEND seen "${name}")
    if(NOT name IN_LIST interface)
        list(APPEND leaked "${name}")
    endif()
endforeach()
foreach(name IN ITEMS VQLIB_CHECK VQLIB_VERSION_STRING)
    if(NOT name IN_LIST seen)
        message(FATAL_ERROR "vqlibMacroCheck: ${name} is not defined: were the headers included?")
    endif()
endforeach()
if(leaked)
    list(JOIN leaked ", " leaked_text)
    message(FATAL_ERROR "vqlibMacroCheck: macros left defined by vqlib's headers: ${leaked_text}")
endif()
list(LENGTH seen count)
message(STATUS "vqlibMacroCheck: ${count} VQLIB_ macros defined, all of the interface")
