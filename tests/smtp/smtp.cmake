# smtp.cmake - mail: the SMTP reply parser, the outbound SMTP module (proxy/origin/smtp_out.c) and the
# `starttls = smtp` route, against real mail software on loopback. Included from tests/CMakeLists.txt.
#
#   smtp_reply        cmocka unit tests of the pure reply parser (no network)
#   smtp_client       cmocka unit tests of the conversation engine (no network)
#   smtp_route        the `starttls = smtp` route with real MX servers (aiosmtpd) and a real client (swaks)
#   smtp_out          the outbound module (smtp_out.c) through test_smtp_out.c against the same MX servers
#   smtp_smarthost    the SMTP smarthost ([smtp NAME], proxy/daemon/smtp.c) with swaks and raw_client.py as clients
#   smtp_postfix      Postfix as the legacy MTA relaying through the smarthost (relayhost), a private instance

add_executable(test_smtp_reply ${CMAKE_CURRENT_LIST_DIR}/test_smtp_reply.c)
target_link_libraries(test_smtp_reply PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME smtp_reply COMMAND test_smtp_reply)
set_tests_properties(smtp_reply PROPERTIES TIMEOUT 60)

# The STARTTLS route and the outbound module against real MX servers (aiosmtpd) and swaks, through the bed's mail
# cases. They run MX servers on the bed's MX host addresses at TESTBED_SMTP_PORT: one at a time.
set(DANEPROXY_SMTP_ENV ${CMAKE_BINARY_DIR}/dnsbed/testbed.env)
add_test(NAME smtp_route
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/smtp.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_SMTP_ENV} route)
set_tests_properties(smtp_route PROPERTIES FIXTURES_REQUIRED dnsbed RESOURCE_LOCK dnsbed_smtp_port TIMEOUT 120)

# test_smtp_out: drives proxy/origin/smtp_out.c on a libuv loop for smtp.sh's `out` group.
add_executable(test_smtp_out ${CMAKE_CURRENT_LIST_DIR}/test_smtp_out.c)
target_link_libraries(test_smtp_out PRIVATE daneproxy_origin)
add_test(NAME smtp_out
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/smtp.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_SMTP_ENV} out
                 $<TARGET_FILE:test_smtp_out>)
set_tests_properties(smtp_out PROPERTIES FIXTURES_REQUIRED dnsbed RESOURCE_LOCK dnsbed_smtp_port TIMEOUT 180)

# The smarthost: one daneproxy with an [smtp NAME] listener per policy, swaks and raw_client.py as the legacy MTA,
# the same MX servers (about 20 s idle; the timeout leaves room for a loaded machine and the ASan build).
add_test(NAME smtp_smarthost
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/smtp.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_SMTP_ENV} smarthost)
set_tests_properties(smtp_smarthost PROPERTIES FIXTURES_REQUIRED dnsbed RESOURCE_LOCK dnsbed_smtp_port TIMEOUT 240)

# Postfix (Debian's package) as the legacy MTA: a private instance under the work directory relays through the
# smarthost to the same MX servers (about 20 s idle). Needs root; skipped (77) without root or without Postfix.
add_test(NAME smtp_postfix
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/postfix.sh $<TARGET_FILE:daneproxy> ${DANEPROXY_SMTP_ENV})
set_tests_properties(smtp_postfix PROPERTIES FIXTURES_REQUIRED dnsbed RESOURCE_LOCK dnsbed_smtp_port TIMEOUT 240
                     SKIP_RETURN_CODE 77)

# test_smtp_client: the conversation engine (pipelining groups, reply order, content checks), no network.
add_executable(test_smtp_client ${CMAKE_CURRENT_LIST_DIR}/test_smtp_client.c)
target_link_libraries(test_smtp_client PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME smtp_client COMMAND test_smtp_client)
set_tests_properties(smtp_client PROPERTIES TIMEOUT 60)
