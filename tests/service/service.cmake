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

# The example configuration is valid, as shipped and with every suggestion in it switched on.
add_test(NAME service_example_config COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-example.sh $<TARGET_FILE:daneproxy>
         ${CMAKE_SOURCE_DIR}/config/daneproxy.conf.example)

# The systemd unit: systemd-analyze verify (no running systemd needed), offline security exposure, directives.
add_test(NAME service_systemd_unit COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-unit.sh ${CMAKE_SOURCE_DIR}
         $<TARGET_FILE:daneproxy>)
set_tests_properties(service_systemd_unit PROPERTIES SKIP_RETURN_CODE 77)

# cmake --install into a scratch DESTDIR: every file in place, the unit with this installation's paths, the
# configuration installed once and kept.
if(IS_ABSOLUTE "${DANEPROXY_SYSTEMD_UNIT_DIR}")
  set(service_unit_dir "${DANEPROXY_SYSTEMD_UNIT_DIR}")
else()
  set(service_unit_dir "${CMAKE_INSTALL_PREFIX}/${DANEPROXY_SYSTEMD_UNIT_DIR}")
endif()
add_test(NAME service_install COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/check-install.sh ${CMAKE_BINARY_DIR}
         ${CMAKE_SOURCE_DIR} ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_MANDIR} ${CMAKE_INSTALL_FULL_DOCDIR}
         ${service_unit_dir} ${DANEPROXY_SYSCONFDIR})
set_tests_properties(service_example_config service_systemd_unit service_install PROPERTIES TIMEOUT 120)

# The daemon under a pretend service manager: READY=1 only once the listener accepts, STOPPING=1 on SIGTERM, and
# (as root) [proxy] user = nobody really switching uid, gids and capabilities.
add_test(NAME service_daemon COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/service_daemon.py $<TARGET_FILE:daneproxy> --expect-reload)
set_tests_properties(service_daemon PROPERTIES TIMEOUT 120)
