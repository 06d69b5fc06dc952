# End-to-end tests: daneproxy between real clients (curl, raw sockets) and real origins (nginx, small Python
# peers), resolving through the hermetic DNSSEC test bed. Included from tests/CMakeLists.txt.
#
# Needs the `dnsbed` fixture (tests/resolver_tests.cmake), whose env file is ${CMAKE_BINARY_DIR}/dnsbed/testbed.env,
# and nginx, curl, openssl and python3 at run time. One ctest test per group so that they run in parallel; every
# group starts its own origins and proxies and stops all of them, even on failure.
#   e2e_dane     DANE-EE/-TA, rollover, mismatch, bogus, insecure/absent/unusable under every policy, CNAMEs,
#                `daneproxy check`; owns the bed's TESTBED_TLS_PORT
#   e2e_traffic  bodies both ways, HEAD/204/304/chunked, keep-alive, pipelining across origins, 50 clients,
#                routes, SIGTERM; owns TESTBED_TLS_PORT2
#   e2e_faults   origins that reset/stall/send garbage, a dead resolver, misbehaving clients (free ports only)
#   e2e_config   `daneproxy -t`, the open-proxy rule
#   e2e_hardening, e2e_hardening_daemon   issue 9's findings, one regression case each (tests/e2e/hardening.bash)
#   e2e_service  reloads under load, worker restarts, log rotation, /metrics (tests/e2e/service.bash)
#   e2e_inbound  WebSocket, lingering close, HTTP/1.0 origins, Proxy-Status on refusals (tests/e2e/inbound.bash)
# The two TLSA ports are shared by everyone who uses the bed: tests that run TLS servers on them take the
# RESOURCE_LOCKs dnsbed_tls_port / dnsbed_tls_port2.

set(DANEPROXY_E2E_ENV ${CMAKE_BINARY_DIR}/dnsbed/testbed.env)

foreach(group dane traffic faults config hardening hardening_daemon inbound service)
  add_test(NAME e2e_${group}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/e2e.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_E2E_ENV} ${group})
  set_tests_properties(e2e_${group} PROPERTIES
                       FIXTURES_REQUIRED dnsbed
                       TIMEOUT 120
                       LABELS e2e)
endforeach()
set_tests_properties(e2e_dane PROPERTIES RESOURCE_LOCK dnsbed_tls_port)
set_tests_properties(e2e_traffic PROPERTIES RESOURCE_LOCK dnsbed_tls_port2)
