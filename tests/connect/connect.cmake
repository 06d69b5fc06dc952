# CONNECT with TLS termination (issue 5), end to end: curl, openssl s_client and headless Chromium through daneproxy
# to an nginx origin in the DNSSEC test bed; misbehaving clients; a small load measurement (printed, not asserted).
# Included from tests/CMakeLists.txt. Needs the dnsbed fixture (defined there), whose env file is
# ${CMAKE_BINARY_DIR}/dnsbed/testbed.env, and nginx, curl, openssl, python3, Chromium and libnss3-tools (all from
# .ci/install-deps; without Chromium its cases are reported as "skip", not failed).
#
# The nginx origin listens on TESTBED_TLS_PORT: every test that runs a server on that port must hold the same
# RESOURCE_LOCK (dnsbed_tls_port). The proxies use free ports in 16000-17999.

# One ctest test per group, so that one failure does not hide the others; each starts its own origin and proxies.
foreach(group curl chromium bad load)
  add_test(NAME connect_${group}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/connect.sh $<TARGET_FILE:daneproxy> ${CMAKE_BINARY_DIR}/dnsbed/testbed.env
                   ${group})
  set_tests_properties(connect_${group} PROPERTIES
    FIXTURES_REQUIRED dnsbed
    RESOURCE_LOCK dnsbed_tls_port
    TIMEOUT 300
    LABELS "e2e;connect")
endforeach()
