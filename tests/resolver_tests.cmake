# resolver_tests.cmake - the resolver against the hermetic DNSSEC test bed; include()d from tests/CMakeLists.txt.
#
# Defines the ctest fixture "dnsbed": one NSD test bed per build tree in ${CMAKE_BINARY_DIR}/dnsbed, started by
# tests/testbed/testbed.sh before the first test that needs it and stopped after the last one. A test that needs
# DNS sets FIXTURES_REQUIRED dnsbed and reads the bed's KEY=VALUE file named by the environment variable
# TESTBED_ENV (${CMAKE_BINARY_DIR}/dnsbed/testbed.env); see DANEPROXY_DNSBED_ENV below.
#
# test_resolver runs one group of tests per ctest test (each its own process): `test_resolver GROUP [TEST]`.
# The group known_bugs is deliberately not registered: it reproduces getdns 1.6.0 defects (hangs, a double free,
# an abort in its own UDP-to-TCP fallback, which it takes even with UDP alone in its transport list; the resolver
# therefore asks over TCP only in both validation modes). With unbound installed the bed also runs a validating
# unbound, and the resolver-mode tests use it (they skip without it).

set(DANEPROXY_TESTBED ${CMAKE_CURRENT_LIST_DIR}/testbed/testbed.sh)
set(DANEPROXY_DNSBED_DIR ${CMAKE_BINARY_DIR}/dnsbed)
set(DANEPROXY_DNSBED_ENV ${DANEPROXY_DNSBED_DIR}/testbed.env)

# Setup stops a bed an interrupted run may have left in the directory, then starts a fresh one.
add_test(NAME dnsbed_setup
         COMMAND sh -c "\"$0\" stop \"$1\" && exec \"$0\" start \"$1\"" ${DANEPROXY_TESTBED} ${DANEPROXY_DNSBED_DIR})
set_tests_properties(dnsbed_setup PROPERTIES FIXTURES_SETUP dnsbed TIMEOUT 60)
add_test(NAME dnsbed_cleanup COMMAND ${DANEPROXY_TESTBED} stop ${DANEPROXY_DNSBED_DIR})
set_tests_properties(dnsbed_cleanup PROPERTIES FIXTURES_CLEANUP dnsbed TIMEOUT 30)

# test_resolver: every bed case, the mail cases (MX lookups, MX hosts), cache, coalescing, cancellation, timeouts, a lossy relay, measured figures.
add_executable(test_resolver ${CMAKE_CURRENT_LIST_DIR}/test_resolver.c)
target_link_libraries(test_resolver PRIVATE daneproxy_resolver daneproxy_dane PkgConfig::CMOCKA)

# group -> ctest timeout in seconds (the relay group waits out many 1 s lookup timeouts).
set(DANEPROXY_RESOLVER_GROUPS cases:60 mail:60 cache:60 coalesce:60 cancel:60 timeout:60 relay:300 figures:120)
foreach(entry ${DANEPROXY_RESOLVER_GROUPS})
  string(REPLACE ":" ";" entry ${entry})
  list(GET entry 0 group)
  list(GET entry 1 seconds)
  add_test(NAME resolver_${group} COMMAND test_resolver ${group})
  set_tests_properties(resolver_${group} PROPERTIES
                       FIXTURES_REQUIRED dnsbed
                       ENVIRONMENT "TESTBED_ENV=${DANEPROXY_DNSBED_ENV}"
                       TIMEOUT ${seconds})
endforeach()
# Latency figures are only meaningful without the other tests competing for the CPU.
set_tests_properties(resolver_figures PROPERTIES RUN_SERIAL TRUE)

# daneproxy lookup and -t in both validation modes (resolver mode through the bed's unbound when it runs one).
add_test(NAME resolver_lookup_cli COMMAND ${CMAKE_CURRENT_LIST_DIR}/testbed/lookup_test.sh $<TARGET_FILE:daneproxy>)
set_tests_properties(resolver_lookup_cli PROPERTIES
                     FIXTURES_REQUIRED dnsbed
                     ENVIRONMENT "TESTBED_ENV=${DANEPROXY_DNSBED_ENV}"
                     TIMEOUT 60)

# The test bed's own checks: start/stop, every case answered as designed (with NSD and, when installed, unbound).
add_test(NAME testbed_selftest COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/testbed/selftest.sh)
set_tests_properties(testbed_selftest PROPERTIES TIMEOUT 120)
