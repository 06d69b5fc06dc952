# smtp.cmake - mail: the SMTP reply parser, the outbound SMTP module (proxy/origin/smtp_out.c) and the
# `starttls = smtp` route, against real mail software on loopback. Included from tests/CMakeLists.txt.
#
#   smtp_reply        cmocka unit tests of the pure reply parser (no network)

add_executable(test_smtp_reply ${CMAKE_CURRENT_LIST_DIR}/test_smtp_reply.c)
target_link_libraries(test_smtp_reply PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME smtp_reply COMMAND test_smtp_reply)
set_tests_properties(smtp_reply PROPERTIES TIMEOUT 60)
