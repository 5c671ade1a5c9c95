# ctest entries for the fuzz targets, included by the main (g++)
# configuration: `fuzz_build` configures and builds the clang fuzz
# configuration in PHONON_FUZZ_BUILD_DIR (a fixture, so `ctest -R
# fuzz_multipart` builds it first), then every fuzz_<target> runs its
# target for PHONON_FUZZ_TEST_SECONDS on a scratch copy of its seeds.
set(PHONON_FUZZ_BUILD_DIR ${CMAKE_BINARY_DIR}/fuzz CACHE PATH
    "Build folder of the clang/libFuzzer configuration")
set(PHONON_FUZZ_TEST_SECONDS 20 CACHE STRING
    "Seconds each fuzz target runs under ctest")

add_test(NAME fuzz_build
         COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/build.sh
                 ${PHONON_FUZZ_BUILD_DIR})
set_tests_properties(fuzz_build PROPERTIES
  FIXTURES_SETUP phonon_fuzz_build LABELS fuzz)

file(GLOB PHONON_FUZZERS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/fuzz/*_fuzzer.cpp)
foreach(fuzzer ${PHONON_FUZZERS})
  get_filename_component(name ${fuzzer} NAME_WE)
  string(REGEX REPLACE "_fuzzer$" "" target ${name})
  add_test(NAME fuzz_${target}
           COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh
                   ${PHONON_FUZZ_BUILD_DIR} ${PHONON_FUZZ_TEST_SECONDS}
                   ${target})
  set_tests_properties(fuzz_${target} PROPERTIES
    FIXTURES_REQUIRED phonon_fuzz_build LABELS fuzz
    TIMEOUT 300)
endforeach()
