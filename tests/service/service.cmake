# Running daneproxy as a service (issue 13): the readiness protocol, giving up root, the manuals kept in step
# with the loader and the option table, the example configuration, the systemd unit, and the install tree.
# Included from tests/CMakeLists.txt; every test is its own process with a timeout.

# test_notify: sd_notify datagrams to a test socket named in NOTIFY_SOCKET (proxy/daemon/notify.c).
add_executable(test_notify ${CMAKE_CURRENT_LIST_DIR}/test_notify.c)
target_link_libraries(test_notify PRIVATE daneproxy_daemon PkgConfig::CMOCKA)
add_test(NAME service_notify COMMAND test_notify)

# test_privdrop: looking up [proxy] user; as root, the switch to nobody in a forked child (proxy/daemon/privdrop.c).
add_executable(test_privdrop ${CMAKE_CURRENT_LIST_DIR}/test_privdrop.c)
target_link_libraries(test_privdrop PRIVATE daneproxy_daemon PkgConfig::CMOCKA)
add_test(NAME service_privdrop COMMAND test_privdrop)

set_tests_properties(service_notify service_privdrop PROPERTIES TIMEOUT 60)

# The manuals against the program: lint, every configuration key (config-keys lists the loader's table), every
# serve option and each tool's options.
add_executable(config-keys ${CMAKE_CURRENT_LIST_DIR}/config_keys.c)
target_link_libraries(config-keys PRIVATE daneproxy_config)
add_test(NAME service_man_lint COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-manuals.sh lint ${CMAKE_SOURCE_DIR})
add_test(NAME service_man_keys COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-manuals.sh keys ${CMAKE_SOURCE_DIR}
         $<TARGET_FILE:config-keys> $<TARGET_FILE:daneproxy>)
add_test(NAME service_man_options COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-manuals.sh options ${CMAKE_SOURCE_DIR}
         $<TARGET_FILE:daneproxy>)
set_tests_properties(service_man_lint service_man_keys service_man_options PROPERTIES TIMEOUT 60)
set_tests_properties(service_man_lint PROPERTIES SKIP_RETURN_CODE 77)
