# Unit tests (cmocka) of the configuration loader, the destination policy and the client request parser.
# Included from tests/CMakeLists.txt, which has already found PkgConfig::CMOCKA; each test is its own process.

# test_config: defaults, INI files with line-numbered errors, command-line settings, validation.
add_executable(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE daneproxy_config PkgConfig::CMOCKA)
add_test(NAME config COMMAND test_config)

# test_policy: DANE.md section 5 as a table, destination rules (proxy/origin).
add_executable(test_policy ${CMAKE_CURRENT_LIST_DIR}/test_policy.c)
target_link_libraries(test_policy PRIVATE daneproxy_origin PkgConfig::CMOCKA)
add_test(NAME policy COMMAND test_policy)

# test_http_req: request heads, limits, origin-form rewrite, body framing.
add_executable(test_http_req ${CMAKE_CURRENT_LIST_DIR}/test_http_req.c)
target_link_libraries(test_http_req PRIVATE daneproxy_http PkgConfig::CMOCKA)
add_test(NAME http_req COMMAND test_http_req)

# test_ca: the local CA, minted leaves, name constraints, key modes (proxy/ca).
add_executable(test_ca ${CMAKE_CURRENT_LIST_DIR}/test_ca.c)
target_link_libraries(test_ca PRIVATE daneproxy_ca daneproxy_dane PkgConfig::CMOCKA)
add_test(NAME ca COMMAND test_ca)

set_tests_properties(config policy http_req ca PROPERTIES TIMEOUT 60)

# test_util: the bottom layer (config/util) and the JSON writer of the log lines.
add_executable(test_util ${CMAKE_CURRENT_LIST_DIR}/test_util.c)
target_link_libraries(test_util PRIVATE daneproxy_util PkgConfig::CMOCKA)
add_test(NAME util COMMAND test_util)
set_tests_properties(util PROPERTIES TIMEOUT 60)

# test_http_resp: origin responses re-framed for the client (status line, hop-by-hop fields, HTTP/1.0 clients).
add_executable(test_http_resp ${CMAKE_CURRENT_LIST_DIR}/test_http_resp.c)
target_link_libraries(test_http_resp PRIVATE daneproxy_http PkgConfig::CMOCKA)
add_test(NAME http_resp COMMAND test_http_resp)
set_tests_properties(http_resp PROPERTIES TIMEOUT 60)

# test_clienthello: CONNECT clients' ClientHellos (real ones from wolfSSL), split, altered, malformed.
add_executable(test_clienthello ${CMAKE_CURRENT_LIST_DIR}/test_clienthello.c)
target_link_libraries(test_clienthello PRIVATE daneproxy_tls PkgConfig::CMOCKA)
add_test(NAME clienthello COMMAND test_clienthello)
set_tests_properties(clienthello PROPERTIES TIMEOUT 60)

# test_daemon: the daemon's drivers and their states, in one process over loopback sockets and an in-process origin.
add_executable(test_daemon ${CMAKE_CURRENT_LIST_DIR}/test_daemon.c)
target_link_libraries(test_daemon PRIVATE daneproxy_daemon PkgConfig::CMOCKA)
add_test(NAME daemon COMMAND test_daemon)
set_tests_properties(daemon PROPERTIES TIMEOUT 60)

# test_smtp_cmd: the smarthost's parser of mail clients' commands and of the end of their message content.
add_executable(test_smtp_cmd ${CMAKE_CURRENT_LIST_DIR}/test_smtp_cmd.c)
target_link_libraries(test_smtp_cmd PRIVATE daneproxy_daemon PkgConfig::CMOCKA)
add_test(NAME smtp_cmd COMMAND test_smtp_cmd)
set_tests_properties(smtp_cmd PROPERTIES TIMEOUT 60)
