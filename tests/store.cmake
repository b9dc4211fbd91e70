# store/: the controller against a real, throwaway PostgreSQL.  rpc_probe is
# the tests' nng client (Python has no nng); it lands next to the tests'
# other binaries and the scripts find it through SLUICE_BUILD.
add_executable(rpc_probe ${CMAKE_CURRENT_SOURCE_DIR}/store/rpc_probe.c)
target_link_libraries(rpc_probe PRIVATE sluice_common)
set_target_properties(rpc_probe PROPERTIES
	RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/store)

sluice_scenario_test(store_migrations store/test_migrations.py 120)
sluice_scenario_test(store_node_auth store/test_node_auth.py 120)
sluice_scenario_test(store_hostile store/test_hostile.py 120)
sluice_scenario_test(store_events store/test_events.py 120)
sluice_scenario_test(store_pg_restart store/test_pg_restart.py 120)
sluice_scenario_test(store_policy store/test_policy.py 120)
foreach(_t store_migrations store_node_auth store_hostile store_events
		store_pg_restart store_policy)
	set_property(TEST ${_t} APPEND PROPERTY LABELS store)
endforeach()

# Pure parts of the controller, as cmocka unit tests.
sluice_unit_test(test_policy_secret store/test_policy_secret.c
	${PROJECT_SOURCE_DIR}/controller/policy_secret.c)
set_property(TEST test_policy_secret APPEND PROPERTY LABELS store)
sluice_scenario_test(store_trace store/test_trace.py 120)
set_property(TEST store_trace APPEND PROPERTY LABELS store)
# Issue 11: non-UTF-8 text and refused events never stop the record.
sluice_scenario_test(store_poison store/test_poison.py 120)
set_property(TEST store_poison APPEND PROPERTY LABELS store)
sluice_unit_test(test_text_escape store/test_text_escape.c
	${PROJECT_SOURCE_DIR}/controller/text_escape.c)
set_property(TEST test_text_escape APPEND PROPERTY LABELS store)
sluice_scenario_test(store_start_without_pg store/test_start_without_pg.py 120)
set_property(TEST store_start_without_pg APPEND PROPERTY LABELS store)
# Issue 16: sluice's own outbound event webhooks (durable outbox).
sluice_scenario_test(store_webhooks store/test_webhooks.py 180)
set_property(TEST store_webhooks APPEND PROPERTY LABELS store)
sluice_unit_test(test_outbox_format store/test_outbox_format.c
	${PROJECT_SOURCE_DIR}/controller/outbox_format.c
	LIBS PkgConfig::LIBEVENT OpenSSL::Crypto)
set_property(TEST test_outbox_format APPEND PROPERTY LABELS store)
# Issue 16: provider webhook signatures (SendGrid, Mailgun, SNS, Basic).
sluice_unit_test(test_hooks_verify store/test_hooks_verify.c
	${PROJECT_SOURCE_DIR}/controller/hooks_verify.c LIBS OpenSSL::Crypto)
set_property(TEST test_hooks_verify APPEND PROPERTY LABELS store)
# Issue 16: provider webhook bodies into sluice events, per provider.
sluice_unit_test(test_hooks_parse store/test_hooks_parse.c
	${PROJECT_SOURCE_DIR}/controller/hooks_parse.c
	${PROJECT_SOURCE_DIR}/controller/hooks_verify.c
	LIBS PkgConfig::JANSSON OpenSSL::Crypto)
set_property(TEST test_hooks_parse APPEND PROPERTY LABELS store)
