# stress.cmake - issue 9's "Keep it hard": the network fuzzer and the soak test through the real daemon, against
# the DNSSEC test bed and real origins on loopback. Included from tests/CMakeLists.txt.
#
# Needs the `dnsbed` fixture (tests/resolver_tests.cmake) and nginx and python3 at run time. Both tests are
# bounded for CI (a fixed seed and fixed counts; fewer in sanitizer builds, where STRESS_SANITIZED=1 also
# lengthens the deadlines and turns the RSS assertion into a printed figure); run longer by hand, see stress.sh:
#   stress_fuzz   mutated heads, bodies, CONNECT + ClientHello sequences, pipelining, aborts at random points; after
#                 each round the proxy's descriptors and connections are back at the baseline, it is alive and
#                 serving, its log is JSON, the origin saw nothing smuggled; no sanitizer report at exit
#   stress_soak   thousands of mixed operations in rounds (GET, keep-alive, POST, CONNECT + TLS verified against the
#                 local CA, refusals, client aborts); descriptors back at the baseline after each round, RSS flat
#                 after the first; owns the bed's TESTBED_TLS_PORT2 (RESOURCE_LOCK dnsbed_tls_port2)

set(DANEPROXY_STRESS_ENV ${CMAKE_BINARY_DIR}/dnsbed/testbed.env)
if(DANEPROXY_SANITIZE)
  set(DANEPROXY_STRESS_SANITIZED 1)
else()
  set(DANEPROXY_STRESS_SANITIZED 0)
endif()

foreach(mode fuzz soak)
  add_test(NAME stress_${mode}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/stress.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_STRESS_ENV} ${mode})
  set_tests_properties(stress_${mode} PROPERTIES
                       FIXTURES_REQUIRED dnsbed
                       ENVIRONMENT "STRESS_SANITIZED=${DANEPROXY_STRESS_SANITIZED}"
                       TIMEOUT 400
                       LABELS stress)
endforeach()
set_tests_properties(stress_soak PROPERTIES RESOURCE_LOCK dnsbed_tls_port2)
