# Compiler flags of the FEDRX_FUZZ build, included by the top CMakeLists.txt
# before any library is defined so that everything the fuzz targets link is
# instrumented: coverage for libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FEDRX_FUZZ needs clang (configure with CC=clang CXX=clang++ "
                      "in a build dir of its own)")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
add_link_options(-fsanitize=address,undefined)
