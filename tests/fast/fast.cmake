# fast.cmake - the fast path of issue 14: origin session resumption bound to the DANE decision, the relay and the
# memory of idle TLS sessions. Included from tests/CMakeLists.txt.

# test_session_cache: keying, the binding (TLSA digest + DNSSEC outcome + method), expiry, the LRU bound.
add_executable(test_session_cache ${CMAKE_CURRENT_LIST_DIR}/../test_session_cache.c)
target_link_libraries(test_session_cache PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME session_cache COMMAND test_session_cache)
set_tests_properties(session_cache PROPERTIES TIMEOUT 60)
