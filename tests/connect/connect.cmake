# CONNECT with TLS termination (issue 5), end to end: curl, openssl s_client and headless Chromium through daneproxy
# to an nginx origin in the DNSSEC test bed; misbehaving clients; a small load measurement (printed, not asserted).
# Included from tests/CMakeLists.txt. Needs the dnsbed fixture (defined there), whose env file is
# ${CMAKE_BINARY_DIR}/dnsbed/testbed.env, and nginx, curl, openssl, python3. Chromium and libnss3-tools are
# installed by the test with apt-get when missing and it runs as root; otherwise the Chromium cases are skipped
# (reported as "skip", not failed), which is why the timeout leaves room for an installation.
#
# The nginx origin listens on TESTBED_TLS_PORT: every test that runs a server on that port must hold the same
# RESOURCE_LOCK (dnsbed_tls_port). The proxies use free ports in 16000-17999.

add_test(NAME connect
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/connect.sh $<TARGET_FILE:daneproxy> ${CMAKE_BINARY_DIR}/dnsbed/testbed.env)
set_tests_properties(connect PROPERTIES
  FIXTURES_REQUIRED dnsbed
  RESOURCE_LOCK dnsbed_tls_port
  TIMEOUT 1200
  LABELS "e2e;connect")
