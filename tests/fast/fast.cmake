# fast.cmake - the fast path of issue 14: origin session resumption bound to the DANE decision, the relay and the
# memory of idle TLS sessions. Included from tests/CMakeLists.txt.

# test_session_cache: keying, the binding (TLSA digest + DNSSEC outcome + method), expiry, the LRU bound.
add_executable(test_session_cache ${CMAKE_CURRENT_LIST_DIR}/../test_session_cache.c)
target_link_libraries(test_session_cache PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME session_cache COMMAND test_session_cache)
set_tests_properties(session_cache PROPERTIES TIMEOUT 60)

# test_resume: resumption against nginx origins (tickets; session IDs) through a DNSSEC bed of its own whose TLSA
# records it changes: the second connection resumes; a changed RRset or DNSSEC outcome, another trust store or an
# expired TTL forces a full, verified handshake; a refused handshake is never cached (tests/fast/resume.sh).
add_executable(test_resume ${CMAKE_CURRENT_LIST_DIR}/test_resume.c)
target_link_libraries(test_resume PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME resume COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/resume.sh $<TARGET_FILE:test_resume>)
set_tests_properties(resume PROPERTIES TIMEOUT 120)

# resume_daemon: the same bed and origins through the daemon: the log line's "resumed" (false, then true; null
# without an origin handshake), daneproxy_upstream_handshakes_total from the metrics listener, origin_sessions = 0.
add_test(NAME resume_daemon COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/resume.sh --daemon $<TARGET_FILE:daneproxy>)
set_tests_properties(resume_daemon PROPERTIES TIMEOUT 120)
