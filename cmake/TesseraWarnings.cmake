# Warnings for every C and C++ target, and the sanitizer switch.
add_compile_options(
  $<$<COMPILE_LANGUAGE:C,CXX>:-Wall> $<$<COMPILE_LANGUAGE:C,CXX>:-Wextra>
  $<$<COMPILE_LANGUAGE:C,CXX>:-Wshadow> $<$<COMPILE_LANGUAGE:C,CXX>:-Wundef>
  $<$<COMPILE_LANGUAGE:C,CXX>:-Wformat=2> $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes>
  $<$<COMPILE_LANGUAGE:C>:-Wmissing-prototypes>)
if(TESSERA_WERROR)
  add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:-Werror>)
endif()

set(TSR_SANITIZE_FLAGS "")
if(TESSERA_SANITIZE)
  string(REPLACE "," ";" _san_list "${TESSERA_SANITIZE}")
  foreach(s IN LISTS _san_list)
    if(NOT s MATCHES "^(address|undefined|thread)$")
      message(FATAL_ERROR "TESSERA_SANITIZE: unknown sanitizer '${s}' (address, undefined, thread)")
    endif()
  endforeach()
  string(REPLACE ";" "," _san "${_san_list}")
  set(TSR_SANITIZE_FLAGS -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  # Everything (objects, tests, tools) is built with the same instrumentation.
  add_compile_options(${TSR_SANITIZE_FLAGS})
  add_link_options(${TSR_SANITIZE_FLAGS})
endif()

